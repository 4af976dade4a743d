/*
 * Ring all-reduce (sum), in place, float32 or with 16-bit values on the wire.
 *
 * N ranks form a ring; each sends only to its right neighbour and receives only from its left:
 *
 *            +--------> rank 1 ---------+
 *            |                          v
 *         rank 0                     rank 2        send to (rank + 1) % N
 *            ^                          |          receive from (rank - 1 + N) % N
 *            +--------- rank 3 <--------+
 *
 * The buffer is cut in N segments s0..s(N-1); the first count % N are one float longer, so a
 * count below N gives empty segments, which are sent as 0 elements.
 *
 * Reduce-scatter, steps 0..N-2: rank r sends segment (r - step) mod N, receives segment
 * (r - step - 1) mod N into scratch and adds it into its own copy. After N-1 steps rank r holds
 * the complete sum of segment (r + 1) mod N.
 * All-gather, steps 0..N-2: rank r sends segment (r + 1 - step) mod N, receives segment
 * (r - step) mod N straight into place: each segment's final bits are computed by one rank and
 * copied to all others, so every rank ends with the same bits.
 *
 * N = 4, segment sent by each rank ("+" = after its left neighbour's segment was added):
 *
 *                     rank 0   rank 1   rank 2   rank 3
 *   reduce-scatter 0    s0       s1       s2       s3
 *   reduce-scatter 1    s3+      s0+      s1+      s2+
 *   reduce-scatter 2    s2+      s3+      s0+      s1+     -> rank r owns the sum of s(r+1)
 *   all-gather     0    s1       s2       s3       s0      (the sums)
 *   all-gather     1    s0       s1       s2       s3
 *   all-gather     2    s3       s0       s1       s2      -> every rank has every sum
 *
 * Step k uses tag tag_base * 2N + k. Each step posts MPI_Irecv of the left neighbour's segment
 * and MPI_Isend of ours; when both complete, a reduce-scatter step adds the received segment
 * into place, and step k + 1 is posted. progress() tests, wait() blocks: the same additions in
 * the same order, so the same bits. Each step is one message of a whole segment: cutting
 * segments into pipelined sub-chunks (so a chunk is added while still in cache) measured no
 * better on one shared-memory node, where the receiving process does the copy itself, and
 * every extra message is one more point where both neighbours must be running.
 *
 * With 16-bit values on the wire (bf16, fp16), one change at each end of every message:
 *
 *   reduce-scatter step: encode our float32 partial sum of the segment to 16 bits, send it;
 *                        receive the left neighbour's 16-bit partial sum, add it in float32.
 *   between the phases:  the owner rounds its finished segment to 16 bits and back, so its copy
 *                        equals what every other rank is about to receive.
 *   all-gather step:     send the (exactly representable) segment as 16 bits, decode on arrival.
 *
 * Each rank thus adds N-1 rounded partial sums into its own float32 values: the rounding error
 * grows with N like the sum itself, as it does in PyTorch's bf16/fp16 compression hooks. The
 * two 16-bit segments in transit (send, receive) share the scratch a float32 segment takes.
 */
#include "cifar_mpi/comm/ring_allreduce.hpp"

#include <algorithm>
#include <cstdint>
#include <string>

#include "cifar_mpi/comm/wire_format.hpp"
#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

size_t ring_scratch_floats(size_t count, int world_size) {
  const size_t n = static_cast<size_t>(std::max(world_size, 1));
  return count / n + (count % n != 0 ? 1 : 0);
}

int ring_first_tag(int n, int tag_base) {
  void* attr = nullptr;
  int flag = 0;
  // Open MPI 4.1 has no MPI_TAG_UB on a split comm: the standard caches it on MPI_COMM_WORLD.
  MPI_CHECK(MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &attr, &flag));
  const long long tag_ub = flag ? *static_cast<int*>(attr) : 32767;  // 32767: the MPI minimum
  const long long first = static_cast<long long>(tag_base) * 2 * n;
  if (tag_base < 0 || first + 2 * n - 1 > tag_ub)
    throw Error("ring all-reduce tag base " + std::to_string(tag_base) + " at " + std::to_string(n) +
                " ranks exceeds MPI_TAG_UB " + std::to_string(tag_ub));
  return static_cast<int>(first);
}

namespace {
// dst[i] += src[i]: the float32 reduction.
void add_into(float* __restrict dst, const float* __restrict src, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] += src[i];
}
}  // namespace

RingAllreduce::RingAllreduce(MPI_Comm comm, WireDtype wire, int tag_base) : comm_(comm), wire_(wire) {
  MPI_CHECK(MPI_Comm_rank(comm, &rank_));
  MPI_CHECK(MPI_Comm_size(comm, &size_));
  if (size_ > 1) tag0_ = ring_first_tag(size_, tag_base);  // at N = 1 nothing is sent
}

RingAllreduce::~RingAllreduce() { complete_in_destructor(*this); }

void RingAllreduce::start(float* data, size_t count, float* scratch, RingPhases phases) {
  if (in_flight_) throw Error("RingAllreduce::start: previous ring all-reduce still in flight");
  data_ = data;
  scratch_ = scratch;
  count_ = count;
  step_ = phases == RingPhases::all_gather ? size_ - 1 : 0;
  end_step_ = phases == RingPhases::reduce_scatter ? size_ - 1 : 2 * (size_ - 1);
  if (size_ == 1) return;  // nothing to exchange (nothing rounded either): complete already
  // Both segment counts of every step must fit MPI's int before anything is posted.
  checked_mpi_count(ring_segment(count, size_, 0).count);
  in_flight_ = true;
  post_step();
}

void RingAllreduce::post_step() {
  const int right = (rank_ + 1) % size_, left = (rank_ - 1 + size_) % size_, tag = tag0_ + step_;
  const RingSegment send = ring_segment(count_, size_, ring_send_segment(rank_, size_, step_));
  const RingSegment recv = ring_segment(count_, size_, ring_recv_segment(rank_, size_, step_));
  const void* send_buf = data_ + send.offset;
  void* recv_buf = step_ < size_ - 1 ? scratch_ : data_ + recv.offset;
  MPI_Datatype type = MPI_FLOAT;
  if (wire_ != WireDtype::fp32) {
    auto* send16 = reinterpret_cast<uint16_t*>(scratch_);
    if (step_ == size_ - 1)  // reduce-scatter done: this rank owns the sum of the segment it sends now
      round_to_wire16(data_ + send.offset, send.count, wire_);
    encode_wire16(data_ + send.offset, send16, send.count, wire_);
    send_buf = send16;
    recv_buf = send16 + ring_scratch_floats(count_, size_);
    type = MPI_UINT16_T;
  }
  MPI_CHECK(MPI_Irecv(recv_buf, checked_mpi_count(recv.count), type, left, tag, comm_, &requests_[0]));
  MPI_CHECK(MPI_Isend(send_buf, checked_mpi_count(send.count), type, right, tag, comm_, &requests_[1]));
}

void RingAllreduce::finish_step() {
  const bool reduce = step_ < size_ - 1;
  const RingSegment recv = ring_segment(count_, size_, ring_recv_segment(rank_, size_, step_));
  if (wire_ == WireDtype::fp32) {
    if (reduce) add_into(data_ + recv.offset, scratch_, recv.count);
  } else {
    const auto* recv16 = reinterpret_cast<const uint16_t*>(scratch_) + ring_scratch_floats(count_, size_);
    if (reduce)
      add_decoded_wire16(data_ + recv.offset, recv16, recv.count, wire_);
    else
      decode_wire16(recv16, data_ + recv.offset, recv.count, wire_);
  }
  if (++step_ == end_step_) {
    in_flight_ = false;
    return;
  }
  post_step();
}

bool RingAllreduce::advance(bool block) {
  while (in_flight_) {
    if (!step_requests_done(requests_, block)) return false;
    finish_step();
  }
  return true;
}

}  // namespace cifar
