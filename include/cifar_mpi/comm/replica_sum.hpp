#pragma once
// Sums a few numbers across the ranks, in place: what --sync-bn's BatchNorm layers need (each
// channel's statistics in forward, two gradient sums in backward) to normalise over the global
// batch. On a communicator of its own: the gradient buckets' reductions may be in flight on the
// training communicator (overlap), started in an order that timing decides, and a collective
// must never interleave with them.
#include <mpi.h>

#include <functional>
#include <memory>
#include <span>

namespace cifar {

class ReplicaSum {
 public:
  explicit ReplicaSum(MPI_Comm comm);  // collective (MPI_Comm_dup)
  ~ReplicaSum();
  ReplicaSum(const ReplicaSum&) = delete;
  ReplicaSum& operator=(const ReplicaSum&) = delete;

  void operator()(std::span<double> values) const;  // collective: MPI_Allreduce, MPI_SUM

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
};

// The function a model's layers call (NetworkOptions::sum_across_replicas); it keeps `sum` alive.
std::function<void(std::span<double>)> as_function(std::shared_ptr<const ReplicaSum> sum);

}  // namespace cifar
