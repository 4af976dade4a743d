#pragma once
// Ring all-reduce (sum) of a float buffer in place: reduce-scatter then all-gather, 2(N-1)
// steps, each rank sending 2(N-1)/N of the buffer in total (diagram and per-step table in
// ring_allreduce.cpp). Works for any N >= 1 and any count, including 0, 1 and counts not
// divisible by N (the remainder is spread over the first segments). Every rank ends with the
// same sum, bitwise: the all-gather copies one rank's reduced segment to all.
//
// One engine, non-blocking, for every use: the flat ring of the trainer and allreduce_bench, both
// halves of the hierarchical ring (hierarchical_allreduce.hpp), polled by the communication thread
// or waited on (blocking = start + wait). Its wire type is the codec:
//
//   fp32       segments travel as they are, received into scratch and added in place;
//   bf16/fp16  each segment is rounded to the wire type to be sent and added in float32 on
//              arrival; the owner of a finished segment rounds its own copy as the others receive
//              it, so every rank ends with the same bits (wire_format.hpp).
//
//   RingAllreduce ar(comm, WireDtype::fp32, /*tag_base=*/bucket);
//   ar.start(grad, count, scratch);          // scratch: ar.scratch_floats(count) floats
//   while (!ar.progress()) { /* compute */ }  // or ar.wait();
//
// Several may be in flight on one comm if each has its own tag_base (tags tag_base * 2N + step).
// All ranks must start the same operations with the same tag bases; the order of start/progress
// calls may differ between ranks.
#include <mpi.h>

#include <cstddef>

#include "cifar_mpi/comm/allreduce.hpp"
#include "cifar_mpi/comm/wire_dtype.hpp"

namespace cifar {

size_t ring_scratch_floats(size_t count, int world_size);

// Which half of the ring to run: both (the all-reduce), or one half alone, as the hierarchical
// all-reduce needs within a host. After reduce_scatter rank r holds the full sum of segment
// (r + 1) mod N; all_gather starts from exactly that state.
enum class RingPhases { both, reduce_scatter, all_gather };

class RingAllreduce final : public Allreduce {
 public:
  // Throws cifar::Error if the tags of tag_base exceed MPI_TAG_UB.
  explicit RingAllreduce(MPI_Comm comm, WireDtype wire = WireDtype::fp32, int tag_base = 0);
  // Completes an operation still in flight: the other ranks are waiting for its messages.
  ~RingAllreduce() override;

  // The largest segment: float32 received there, or two 16-bit segments (send, receive) in it.
  size_t scratch_floats(size_t count) const override { return ring_scratch_floats(count, size_); }
  void start(float* data, size_t count, float* scratch) override { start(data, count, scratch, RingPhases::both); }
  void start(float* data, size_t count, float* scratch, RingPhases phases);
  bool progress() override { return advance(false); }
  void wait() override { advance(true); }
  bool in_flight() const { return in_flight_; }

 private:
  bool advance(bool block);
  void post_step();    // posts irecv + isend of step_
  void finish_step();  // reduces (reduce-scatter) or decodes, and moves on to the next step

  MPI_Comm comm_;
  WireDtype wire_;
  int rank_ = 0, size_ = 1, tag0_ = 0, step_ = 0, end_step_ = 0;
  float* data_ = nullptr;
  float* scratch_ = nullptr;
  size_t count_ = 0;
  bool in_flight_ = false;
  MPI_Request requests_[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};  // recv, send
};

// Blocking form: start + wait.
inline void ring_allreduce_sum(float* data, size_t count, float* scratch, MPI_Comm comm, int tag_base = 0,
                               WireDtype wire = WireDtype::fp32) {
  RingAllreduce ring(comm, wire, tag_base);
  ring.start(data, count, scratch);
  ring.wait();
}

// Segment `seg` of a `count`-float buffer cut in `n` pieces, the first count % n pieces one
// float longer.
struct RingSegment {
  size_t offset;
  size_t count;
};
inline RingSegment ring_segment(size_t count, int n, int seg) {
  const size_t base = count / static_cast<size_t>(n), extra = count % static_cast<size_t>(n);
  const size_t s = static_cast<size_t>(seg);
  return {s * base + (s < extra ? s : extra), base + (s < extra ? 1 : 0)};
}

// Segment index rank `rank` sends at `step` of 2(N-1) (steps 0..N-2 reduce-scatter,
// N-1..2N-3 all-gather), and the one it receives (always the one its left neighbour sends).
inline int ring_send_segment(int rank, int n, int step) {
  // reduce-scatter: rank - step; all-gather: rank + 1 - (step - (N-1)), the segment rank owns first
  const int s = step < n - 1 ? step : step - (n - 1) - 1;
  return ((rank - s) % n + n) % n;
}
inline int ring_recv_segment(int rank, int n, int step) { return ring_send_segment(rank - 1 + n, n, step); }

// First tag of a ring all-reduce with this tag base on a comm of n ranks; checks it fits
// under MPI_TAG_UB (cached on MPI_COMM_WORLD only, and valid for every communicator).
int ring_first_tag(int n, int tag_base);

}  // namespace cifar
