#pragma once
// Non-blocking ring all-reduce (sum) of a caller-owned float span, for overlapping gradient
// communication with backward computation: one object per gradient bucket, started when the
// bucket's gradients are ready, progressed between layers, waited on before the update.
// Same segments, same steps and the same reduction as ring_allreduce_sum, so the result is
// bitwise equal to the blocking form. No allocation: `scratch` holds ring_scratch_floats(count, N).
//
//   RingAllreduce ar;
//   ar.start(grad, count, scratch, comm, /*tag_base=*/bucket);
//   while (!ar.progress()) { /* compute */ }    // or ar.wait();
//
// Several may be in flight on one comm if each has its own tag_base (tags
// tag_base * 2N + step). All ranks must start the same operations with the same tag bases;
// the order of start/progress calls may differ between ranks.
#include <mpi.h>

#include <cstddef>

namespace cifar {

// Which half of the ring to run: both (the all-reduce), or one half alone, as the hierarchical
// all-reduce (hierarchical_allreduce.hpp) needs within a host. After reduce_scatter rank r holds
// the full sum of segment (r + 1) mod N; all_gather starts from exactly that state.
enum class RingPhases { both, reduce_scatter, all_gather };

class RingAllreduce {
 public:
  RingAllreduce() = default;
  RingAllreduce(const RingAllreduce&) = delete;  // posted requests point into this object's span
  RingAllreduce& operator=(const RingAllreduce&) = delete;
  // Completes an operation still in flight: the other ranks are waiting for its messages.
  ~RingAllreduce();

  // Posts the first step. Throws cifar::Error if an operation is already in flight.
  void start(float* data, size_t count, float* scratch, MPI_Comm comm, int tag_base = 0,
             RingPhases phases = RingPhases::both);
  // Advances as far as possible without blocking; true once the sum is complete (and, with no
  // operation in flight, at once).
  bool progress();
  // Blocks until the sum is complete.
  void wait();
  bool in_flight() const { return in_flight_; }

 private:
  void post_step();    // posts irecv + isend of step_
  void finish_step();  // reduces (reduce-scatter) and moves on to the next step

  float* data_ = nullptr;
  float* scratch_ = nullptr;
  size_t count_ = 0;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1, tag0_ = 0, step_ = 0, end_step_ = 0;
  bool in_flight_ = false;
  MPI_Request requests_[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};  // recv, send
};

}  // namespace cifar
