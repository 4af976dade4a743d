// Ring all-reduce with 16-bit values on the wire: the algorithm of ring_allreduce.cpp (diagram
// and per-step table there), with one change at each end of every message.
//
//   reduce-scatter step: encode our float32 partial sum of the segment to 16 bits, send it;
//                        receive the left neighbour's 16-bit partial sum, add it in float32.
//   between the phases:  the owner rounds its finished segment to 16 bits and back, so its copy
//                        equals what every other rank is about to receive.
//   all-gather step:     send the (exactly representable) segment as 16 bits, decode on arrival.
//
// Each rank thus adds N-1 rounded partial sums into its own float32 values: the rounding error
// grows with N like the sum itself, as it does in PyTorch's bf16/fp16 compression hooks.
#include <mpi.h>

#include "cifar_mpi/comm/ring_allreduce.hpp"
#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

void ring_allreduce_sum_wire16(float* data, size_t count, uint16_t* send16, uint16_t* recv16, WireDtype wire,
                               MPI_Comm comm, int tag_base) {
  int rank = 0, n = 1;
  MPI_CHECK(MPI_Comm_rank(comm, &rank));
  MPI_CHECK(MPI_Comm_size(comm, &n));
  if (wire == WireDtype::fp32) throw Error("ring_allreduce_sum_wire16: fp32 is not a 16-bit wire type");
  if (n == 1) return;  // nothing travels: the values stay float32, as with one process anywhere
  const int tag0 = ring_first_tag(n, tag_base);
  const int right = (rank + 1) % n, left = (rank - 1 + n) % n;

  for (int step = 0; step < 2 * (n - 1); ++step) {
    const bool reduce = step < n - 1;
    if (step == n - 1) {  // reduce-scatter done: this rank owns the sum of its first all-gather segment
      const RingSegment own = ring_segment(count, n, ring_send_segment(rank, n, step));
      round_to_wire16(data + own.offset, own.count, wire);
    }
    const RingSegment send = ring_segment(count, n, ring_send_segment(rank, n, step));
    const RingSegment recv = ring_segment(count, n, ring_recv_segment(rank, n, step));
    encode_wire16(data + send.offset, send16, send.count, wire);
    MPI_CHECK(MPI_Sendrecv(send16, checked_mpi_count(send.count), MPI_UINT16_T, right, tag0 + step, recv16,
                           checked_mpi_count(recv.count), MPI_UINT16_T, left, tag0 + step, comm, MPI_STATUS_IGNORE));
    if (reduce)
      add_decoded_wire16(data + recv.offset, recv16, recv.count, wire);
    else
      decode_wire16(recv16, data + recv.offset, recv.count, wire);
  }
}

}  // namespace cifar
