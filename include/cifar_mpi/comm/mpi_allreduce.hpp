#pragma once
// The library's all-reduce: MPI_Allreduce(MPI_SUM) of the float32 buffer in place, or, with a
// 16-bit wire type, the buffer encoded to bf16/fp16 in scratch, reduced with a user MPI_Op that
// sums in float32 (create_wire_sum_op) and decoded back. The `mpi` strategy, and `naive` (the
// same with one bucket per parameter tensor, bucket_plan.hpp).
//
// Blocking: Open MPI progresses a non-blocking collective only inside MPI calls, so start() runs
// the whole all-reduce and progress() is true at once. At N = 1 nothing is sent or rounded.
#include <mpi.h>

#include <cstddef>

#include "cifar_mpi/comm/allreduce.hpp"
#include "cifar_mpi/comm/wire_dtype.hpp"

namespace cifar {

class MpiAllreduce final : public Allreduce {
 public:
  explicit MpiAllreduce(MPI_Comm comm, WireDtype wire = WireDtype::fp32);
  ~MpiAllreduce() override;

  // 16-bit wire: the encoded buffer, two values a float.
  size_t scratch_floats(size_t count) const override { return wire_ == WireDtype::fp32 ? 0 : (count + 1) / 2; }
  void start(float* data, size_t count, float* scratch) override;
  bool progress() override { return true; }

 private:
  MPI_Comm comm_;
  WireDtype wire_;
  int size_ = 1;
  MPI_Op wire_op_ = MPI_OP_NULL;  // 16-bit wire: sum in float32
};

}  // namespace cifar
