/*
 * Ring all-reduce (sum), in place, float32.
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
 * Each rank sends and receives 2(N-1) segments, 2(N-1)/N of the buffer: the bandwidth optimum.
 * Step k uses tag tag_base * 2N + k. Each step is one MPI_Sendrecv of a whole segment: cutting
 * segments into pipelined sub-chunks (so a chunk is added while still in cache) measured no
 * better on one shared-memory node, where the receiving process does the copy itself, and
 * every extra message is one more point where both neighbours must be running.
 */
#include "cifar_mpi/comm/ring_allreduce.hpp"

#include <algorithm>
#include <string>

#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

size_t ring_scratch_floats(size_t count, int world_size) {
  const size_t n = static_cast<size_t>(std::max(world_size, 1));
  return count / n + (count % n != 0 ? 1 : 0);
}

void ring_reduce_add(float* __restrict dst, const float* __restrict src, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] += src[i];
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

void ring_allreduce_sum(float* data, size_t count, float* scratch, MPI_Comm comm, int tag_base) {
  int rank = 0, n = 1;
  MPI_CHECK(MPI_Comm_rank(comm, &rank));
  MPI_CHECK(MPI_Comm_size(comm, &n));
  if (n == 1) return;
  const int tag0 = ring_first_tag(n, tag_base);
  const int right = (rank + 1) % n, left = (rank - 1 + n) % n;

  for (int step = 0; step < 2 * (n - 1); ++step) {
    const bool reduce = step < n - 1;
    const RingSegment send = ring_segment(count, n, ring_send_segment(rank, n, step));
    const RingSegment recv = ring_segment(count, n, ring_recv_segment(rank, n, step));
    float* recv_buf = reduce ? scratch : data + recv.offset;
    MPI_CHECK(MPI_Sendrecv(data + send.offset, checked_mpi_count(send.count), MPI_FLOAT, right, tag0 + step,
                           recv_buf, checked_mpi_count(recv.count), MPI_FLOAT, left, tag0 + step, comm,
                           MPI_STATUS_IGNORE));
    if (reduce) ring_reduce_add(data + recv.offset, scratch, recv.count);
  }
}

}  // namespace cifar
