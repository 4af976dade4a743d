// MPI's all-reduce in the two forms of mpi_allreduce.hpp: blocking MPI_Allreduce when waited on,
// MPI_Iallreduce + MPI_Test when polled.
#include "cifar_mpi/comm/mpi_allreduce.hpp"

#include <cstdint>

#include "cifar_mpi/comm/wire_format.hpp"
#include "cifar_mpi/util/error.hpp"
#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

MpiAllreduce::MpiAllreduce(MPI_Comm comm, WireDtype wire) : comm_(comm), wire_(wire) {
  MPI_CHECK(MPI_Comm_size(comm_, &size_));
  if (wire_ != WireDtype::fp32 && size_ > 1) wire_op_ = create_wire_sum_op(wire_);
}

MpiAllreduce::~MpiAllreduce() {
  complete_in_destructor(*this);
  if (wire_op_ != MPI_OP_NULL) MPI_Op_free(&wire_op_);
}

void* MpiAllreduce::wire_buffer() const {
  return wire_ == WireDtype::fp32 ? static_cast<void*>(data_) : static_cast<void*>(scratch_);
}

void MpiAllreduce::start(float* data, size_t count, float* scratch) {
  if (started_ || request_ != MPI_REQUEST_NULL)
    throw Error("MpiAllreduce::start: previous all-reduce still in flight");
  if (size_ == 1) return;
  count_ = checked_mpi_count(count);  // before anything changes: a count too large starts nothing
  data_ = data;
  scratch_ = scratch;
  if (wire_ != WireDtype::fp32) encode_wire16(data_, reinterpret_cast<uint16_t*>(scratch_), count, wire_);
  started_ = true;
}

bool MpiAllreduce::progress() {
  if (started_) {  // polled: post the non-blocking form
    started_ = false;
    const MPI_Datatype type = wire_ == WireDtype::fp32 ? MPI_FLOAT : MPI_UINT16_T;
    const MPI_Op op = wire_ == WireDtype::fp32 ? MPI_SUM : wire_op_;
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, wire_buffer(), count_, type, op, comm_, &request_));
  }
  if (request_ == MPI_REQUEST_NULL) return true;
  int done = 0;
  MPI_CHECK(MPI_Test(&request_, &done, MPI_STATUS_IGNORE));
  if (done) finish();
  return done != 0;
}

void MpiAllreduce::wait() {
  if (started_) {  // waited on: the blocking form, as before the polled one existed
    started_ = false;
    if (wire_ == WireDtype::fp32)
      MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, data_, count_, MPI_FLOAT, MPI_SUM, comm_));
    else
      MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, scratch_, count_, MPI_UINT16_T, wire_op_, comm_));
    finish();
  } else if (request_ != MPI_REQUEST_NULL) {
    MPI_CHECK(MPI_Wait(&request_, MPI_STATUS_IGNORE));
    finish();
  }
}

void MpiAllreduce::finish() {
  if (wire_ != WireDtype::fp32)
    decode_wire16(reinterpret_cast<const uint16_t*>(scratch_), data_, static_cast<size_t>(count_), wire_);
}

}  // namespace cifar
