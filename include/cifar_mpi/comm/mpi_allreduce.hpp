#pragma once
// The library's all-reduce: MPI_Allreduce(MPI_SUM) of the float32 buffer in place, or, with a
// 16-bit wire type, the buffer encoded to bf16/fp16 in scratch, reduced with a user MPI_Op that
// sums in float32 (create_wire_sum_op) and decoded back. The `mpi` strategy, and `naive` (the
// same with one bucket per parameter tensor, bucket_plan.hpp).
//
// Two forms, chosen by the first call after start():
//   waited  start + wait: the blocking MPI_Allreduce, run inside wait() (Open MPI's tuned
//           component: the form and the bits of the trainer with --overlap off);
//   polled  start + progress...: the first progress() posts MPI_Iallreduce (Open MPI's libnbc),
//           and each progress() is one MPI_Test, so the communication thread can sleep between
//           polls instead of spinning in MPI beside backward (gradient_reducer.hpp). wait()
//           after a progress() is MPI_Wait.
// The two may add in different orders (tuned and libnbc pick their algorithms apart), so their
// bits may differ; each leaves every rank with the same bits. MPI never matches a blocking
// collective with a non-blocking one: every rank must use the same form for an operation (the
// reducer's --overlap is the same on all ranks).
//
// With a 16-bit wire the buffer is encoded in start() and decoded when the operation completes.
// At N = 1 nothing is sent or rounded.
#include <mpi.h>

#include <cstddef>

#include "cifar_mpi/comm/allreduce.hpp"
#include "cifar_mpi/comm/wire_dtype.hpp"

namespace cifar {

class MpiAllreduce final : public Allreduce {
 public:
  explicit MpiAllreduce(MPI_Comm comm, WireDtype wire = WireDtype::fp32);
  // Completes an operation still in flight: the other ranks are waiting for it.
  ~MpiAllreduce() override;

  // 16-bit wire: the encoded buffer, two values a float.
  size_t scratch_floats(size_t count) const override { return wire_ == WireDtype::fp32 ? 0 : (count + 1) / 2; }
  void start(float* data, size_t count, float* scratch) override;
  bool progress() override;
  void wait() override;

 private:
  void* wire_buffer() const;  // what MPI reduces: data_, or the 16-bit copy in scratch_
  void finish();              // decodes a 16-bit result; nothing in flight afterwards

  MPI_Comm comm_;
  WireDtype wire_;
  int size_ = 1;
  MPI_Op wire_op_ = MPI_OP_NULL;  // 16-bit wire: sum in float32
  float* data_ = nullptr;
  float* scratch_ = nullptr;
  int count_ = 0;
  bool started_ = false;                // start() called, neither progress() nor wait() yet
  MPI_Request request_ = MPI_REQUEST_NULL;  // the posted MPI_Iallreduce (polled form)
};

}  // namespace cifar
