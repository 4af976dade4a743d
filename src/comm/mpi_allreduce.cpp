#include "cifar_mpi/comm/mpi_allreduce.hpp"

#include <cstdint>

#include "cifar_mpi/comm/wire_format.hpp"
#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

MpiAllreduce::MpiAllreduce(MPI_Comm comm, WireDtype wire) : comm_(comm), wire_(wire) {
  MPI_CHECK(MPI_Comm_size(comm_, &size_));
  if (wire_ != WireDtype::fp32 && size_ > 1) wire_op_ = create_wire_sum_op(wire_);
}

MpiAllreduce::~MpiAllreduce() {
  if (wire_op_ != MPI_OP_NULL) MPI_Op_free(&wire_op_);
}

void MpiAllreduce::start(float* data, size_t count, float* scratch) {
  if (size_ == 1) return;
  if (wire_ == WireDtype::fp32) {
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, data, checked_mpi_count(count), MPI_FLOAT, MPI_SUM, comm_));
    return;
  }
  auto* wire16 = reinterpret_cast<uint16_t*>(scratch);
  encode_wire16(data, wire16, count, wire_);
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, wire16, checked_mpi_count(count), MPI_UINT16_T, wire_op_, comm_));
  decode_wire16(wire16, data, count, wire_);
}

}  // namespace cifar
