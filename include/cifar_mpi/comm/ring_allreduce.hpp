#pragma once
// Ring all-reduce (sum) of a float buffer in place: reduce-scatter then all-gather over
// MPI_Sendrecv, 2(N-1) steps, each rank sending 2(N-1)/N of the buffer in total.
// Works for any N >= 1 and any count, including 0, 1 and counts not divisible by N
// (the remainder is spread over the first segments). The caller owns `scratch`, which must
// hold at least ring_scratch_floats(count, N) floats: no allocation inside a step.
// The non-blocking form (same algorithm, same bits) is in ring_allreduce_async.hpp.
#include <mpi.h>

#include <cstddef>
#include <cstdint>

#include "cifar_mpi/comm/wire_format.hpp"

namespace cifar {

size_t ring_scratch_floats(size_t count, int world_size);

// Sums `data` (count floats) across all ranks of `comm`; every rank ends with the same sum,
// bitwise (the all-gather copies one rank's reduced segment to all).
// Messages use tags [tag_base * 2N, tag_base * 2N + 2N - 2); ring all-reduces that may be in
// flight on the same comm at the same time need distinct tag bases.
void ring_allreduce_sum(float* data, size_t count, float* scratch, MPI_Comm comm, int tag_base = 0);

// The same ring with 16-bit values on the wire (bf16 or fp16; ring_allreduce_compressed.cpp):
// each segment is rounded to `wire` to be sent and added in float32 on arrival; the owner of a
// finished segment rounds its own copy as the others receive it, so every rank ends with the
// same bits. `send16` and `recv16` each hold ring_scratch_floats(count, N) values.
void ring_allreduce_sum_wire16(float* data, size_t count, uint16_t* send16, uint16_t* recv16, WireDtype wire,
                               MPI_Comm comm, int tag_base = 0);

// Segment arithmetic shared by the blocking and non-blocking forms: segment `seg` of a
// `count`-float buffer cut in `n` pieces, the first count % n pieces one float longer.
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

// dst[i] += src[i]: the reduction, written once so both forms produce the same bits.
void ring_reduce_add(float* __restrict dst, const float* __restrict src, size_t n);

}  // namespace cifar
