#pragma once
// Recursive-halving / recursive-doubling all-reduce (sum) of a float buffer in place
// (Rabenseifner's algorithm; Thakur, Rabenseifner & Gropp 2005): a reduce-scatter by recursive
// halving, then an all-gather by recursive doubling, over the largest power of two p' <= N ranks.
// 2 log2(p') messages per rank against the ring's 2(N-1), each rank still sending 2(p'-1)/p' of
// the buffer; the ranks beyond p' hand their buffer to a partner first and get the sum back at the
// end (two more steps on those pairs). Diagram and per-step table in rhd_allreduce.cpp.
//
// Any N >= 1 and any count (0, 1, < N: blocks of uneven size, some empty). Non-blocking like the
// ring (start/progress/wait on MPI_Isend/Irecv + Testall), so the communication thread can poll
// it, with the same wire codec: bf16/fp16 values are encoded to be sent and added in float32 on
// arrival; each block's owner rounds its finished sum to the wire type before the all-gather, so
// every rank ends with the owner's bits.
//
//   RhdAllreduce ar(comm, WireDtype::fp32);
//   std::vector<float> scratch(ar.scratch_floats(count));
//   ar.start(grad, count, scratch.data());
//   while (!ar.progress()) { /* compute */ }   // or ar.wait();
#include <mpi.h>

#include <cstddef>

#include "cifar_mpi/comm/allreduce.hpp"
#include "cifar_mpi/comm/wire_dtype.hpp"

namespace cifar {

// Where rank `rank` of `n` stands: p' = the largest power of two <= n; the first 2(n - p') ranks
// are paired (even rank folds into the odd one after it, and gets no block); `vrank` is the index
// among the p' ranks that do the halving and doubling, -1 for a folded rank.
struct RhdPlace {
  int pow2;   // p'
  int steps;  // log2(p')
  int vrank;  // 0..p'-1, or -1
};
RhdPlace rhd_place(int rank, int n);

// The largest message of the halving/doubling steps: the lower half of the p' blocks (blocks as
// ring_segment cuts them: the first count % p' one float longer), in floats.
size_t rhd_half_floats(size_t count, int n);

class RhdAllreduce final : public Allreduce {
 public:
  // Tags tag_base * 2N .. + 2 log2(p') + 1 (the ring's range for the same base, which it fits in);
  // throws cifar::Error past MPI_TAG_UB.
  explicit RhdAllreduce(MPI_Comm comm, WireDtype wire = WireDtype::fp32, int tag_base = 0);
  ~RhdAllreduce() override;

  // float32: the largest half (and the whole buffer where N is not a power of two, for the fold);
  // 16-bit: a sent and a received half as 16-bit values (and the folded buffer as 16-bit values).
  size_t scratch_floats(size_t count) const override;
  void start(float* data, size_t count, float* scratch) override;
  bool progress() override { return advance(false); }
  void wait() override { advance(true); }

 private:
  bool advance(bool block);
  bool takes_part(int step) const;  // whether this rank sends or receives at global step `step`
  void post_step();
  void finish_step();
  void next_step();  // moves step_ to this rank's next step and posts it, or completes

  MPI_Comm comm_;
  WireDtype wire_;
  int rank_ = 0, size_ = 1, tag0_ = 0;
  RhdPlace place_{1, 0, 0};
  // Global steps: 0 fold, 1..L halving, L+1..2L doubling, 2L+1 unfold (L = log2 p').
  int step_ = 0;
  float* data_ = nullptr;
  float* scratch_ = nullptr;
  size_t count_ = 0, half_ = 0;
  bool in_flight_ = false;
  MPI_Request requests_[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};  // recv, send
};

}  // namespace cifar
