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
 * Step k uses tag tag_base * 2N + k. A segment is exchanged in sub-chunks of kChunkFloats, so
 * the chunk just received is still in cache when it is added (see bench/allreduce_bench.cpp).
 */
#include "cifar_mpi/comm/ring_allreduce.hpp"

#include <algorithm>
#include <climits>
#include <string>

#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

namespace {

// 64K floats = 256 KiB: well inside L2, large enough that per-message latency is small.
#include <cstdlib>
static size_t chunk_floats() { static size_t c = std::getenv("RING_CHUNK") ? std::strtoull(std::getenv("RING_CHUNK"), nullptr, 10) : (size_t{1} << 16); return c; }
#define kChunkFloats chunk_floats()

// Exchanges segment `send` for segment `recv` (into `recv_buf`) chunk by chunk; `add` says
// whether each received chunk is added into `recv` or was received into place.
void exchange_segment(float* data, RingSegment send, RingSegment recv, float* recv_buf, bool add,
                      int right, int left, int tag, MPI_Comm comm) {
  const size_t longest = std::max(send.count, recv.count);
  size_t done = 0;
  do {  // at least once, so an empty segment still exchanges its 0-element message
    const size_t n_send = send.count > done ? std::min(kChunkFloats, send.count - done) : 0;
    const size_t n_recv = recv.count > done ? std::min(kChunkFloats, recv.count - done) : 0;
    float* in = recv_buf + done;
    MPI_CHECK(MPI_Sendrecv(data + send.offset + done, checked_mpi_count(n_send), MPI_FLOAT, right, tag,
                           in, checked_mpi_count(n_recv), MPI_FLOAT, left, tag, comm, MPI_STATUS_IGNORE));
    if (add) ring_reduce_add(data + recv.offset + done, in, n_recv);
    done += kChunkFloats;
  } while (done < longest);
}

}  // namespace

size_t ring_scratch_floats(size_t count, int world_size) {
  const size_t n = static_cast<size_t>(std::max(world_size, 1));
  return count / n + (count % n != 0 ? 1 : 0);
}

void ring_reduce_add(float* __restrict dst, const float* __restrict src, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] += src[i];
}

int ring_first_tag(MPI_Comm comm, int n, int tag_base) {
  void* attr = nullptr;
  int flag = 0;
  MPI_CHECK(MPI_Comm_get_attr(comm, MPI_TAG_UB, &attr, &flag));
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
  const int tag0 = ring_first_tag(comm, n, tag_base);
  const int right = (rank + 1) % n, left = (rank - 1 + n) % n;

  for (int step = 0; step < 2 * (n - 1); ++step) {
    const bool reduce = step < n - 1;
    const RingSegment send = ring_segment(count, n, ring_send_segment(rank, n, step));
    const RingSegment recv = ring_segment(count, n, ring_recv_segment(rank, n, step));
    float* recv_buf = reduce ? scratch : data + recv.offset;
    exchange_segment(data, send, recv, recv_buf, reduce, right, left, tag0 + step, comm);
  }
}

}  // namespace cifar
