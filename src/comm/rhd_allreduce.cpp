/*
 * Recursive-halving / recursive-doubling all-reduce (sum), in place (Rabenseifner; Thakur,
 * Rabenseifner & Gropp, "Optimization of Collective Communication Operations in MPICH", 2005).
 *
 * p' = the largest power of two <= N; L = log2(p'). The buffer is cut in p' blocks b0..b(p'-1)
 * as the ring cuts its segments (the first count % p' one float longer; some empty if count < p').
 * The p' ranks that take part are numbered v = 0..p'-1; at each step a rank exchanges with the
 * rank whose v differs in one bit:
 *
 *     halving step 1 (bit p'/2)      halving step 2 (bit p'/4) ...   then the same pairs in
 *       v0 <------> v2                 v0 <--> v1                    reverse order, doubling
 *       v1 <------> v3                 v2 <--> v3
 *
 * Reduce-scatter by recursive halving: the rank holds a range of blocks (all p' at first); it
 * keeps the half on its side of the bit (lower half if its bit is 0), sends the other half to
 * its partner, receives the partner's copy of the half it keeps and adds it in. After L steps
 * rank v holds the complete sum of block v.
 * All-gather by recursive doubling: the same pairs in reverse order; each sends all the summed
 * blocks it has and receives its partner's, straight into place. Every block's final bits are
 * computed by one rank (its owner) and copied to all others, so every rank ends with the same bits.
 *
 * N = 4 (p' = 4), what each rank sends to whom (S = the buffer's bytes):
 *
 *                      rank 0    rank 1    rank 2    rank 3     each sends
 *   halving  1  (v^2)  b2b3->2   b2b3->3   b0b1->0   b0b1->1      S/2
 *   halving  2  (v^1)  b1->1     b0->0     b3->3     b2->2        S/4    -> rank v owns sum of bv
 *   doubling 1  (v^1)  b0->1     b1->0     b2->3     b3->2        S/4
 *   doubling 2  (v^2)  b0b1->2   b0b1->3   b2b3->0   b2b3->1      S/2    -> every rank has all
 *
 * 2L messages and 2(p'-1)/p' S bytes per rank, against the ring's 2(N-1) messages.
 *
 * N not a power of two: the first 2r ranks (r = N - p') are paired, and the even rank of each
 * pair takes no part in the halving and doubling. N = 6 (p' = 4, r = 2):
 *
 *   fold   (step 0):      rank 0 -> rank 1, rank 2 -> rank 3: the whole buffer, added in
 *   halving/doubling:     rank 1 = v0, rank 3 = v1, rank 4 = v2, rank 5 = v3, as above
 *   unfold (step 2L+1):   rank 1 -> rank 0, rank 3 -> rank 2: the whole result, copied
 *
 * so those pairs add 2 steps and S bytes each way (the price Rabenseifner's fold pays).
 *
 * Global step g uses tag tag_base * 2N + g (0 fold, 1..L halving, L+1..2L doubling, 2L+1 unfold;
 * 2L + 2 <= 2N, inside the ring's range). Each step posts MPI_Irecv and MPI_Isend (one of them on
 * the fold and unfold); when both complete the step's addition or decoding is done and the next
 * step is posted. progress() tests, wait() blocks: the same additions in the same order.
 *
 * With 16-bit values on the wire (bf16, fp16), as in the ring:
 *
 *   fold, halving:    encode our float32 values (partial sums) to 16 bits and send them; add the
 *                     received 16-bit values in float32.
 *   before doubling:  the owner rounds its block to 16 bits and back, so its copy equals what
 *                     every other rank is about to receive.
 *   doubling, unfold: every value sent is exactly representable (rounded by its owner), so
 *                     encode, send, decode copies the owner's bits.
 *
 * Scratch: float32 receives the kept half (the fold receives the whole buffer); 16-bit needs a
 * sent and a received half (the fold one whole buffer, one way) as 16-bit values.
 */
#include "cifar_mpi/comm/rhd_allreduce.hpp"

#include <algorithm>
#include <cstdint>

#include "cifar_mpi/comm/ring_allreduce.hpp"
#include "cifar_mpi/comm/wire_format.hpp"
#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

namespace {

// Float offset of block b of p (b = p: the end of the buffer): the ring's cut.
size_t block_offset(size_t count, int p, int b) {
  const size_t base = count / static_cast<size_t>(p), extra = count % static_cast<size_t>(p);
  const size_t s = static_cast<size_t>(b);
  return s * base + std::min(s, extra);
}

struct Range {
  size_t offset, count;
};
Range blocks(size_t count, int p, int first, int n_blocks) {
  const size_t begin = block_offset(count, p, first);
  return {begin, block_offset(count, p, first + n_blocks) - begin};
}

void add_into(float* __restrict dst, const float* __restrict src, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] += src[i];
}

bool power_of_two(int n) { return (n & (n - 1)) == 0; }

}  // namespace

RhdPlace rhd_place(int rank, int n) {
  int pow2 = 1, steps = 0;
  while (pow2 * 2 <= n) {
    pow2 *= 2;
    ++steps;
  }
  const int extra = n - pow2;
  int vrank = rank - extra;  // unpaired ranks
  if (rank < 2 * extra) vrank = rank % 2 == 1 ? rank / 2 : -1;
  return {pow2, steps, vrank};
}

size_t rhd_half_floats(size_t count, int n) {
  const int p = rhd_place(0, std::max(n, 1)).pow2;
  return p == 1 ? 0 : block_offset(count, p, p / 2);
}

RhdAllreduce::RhdAllreduce(MPI_Comm comm, WireDtype wire, int tag_base) : comm_(comm), wire_(wire) {
  MPI_CHECK(MPI_Comm_rank(comm, &rank_));
  MPI_CHECK(MPI_Comm_size(comm, &size_));
  place_ = rhd_place(rank_, size_);
  if (size_ > 1) tag0_ = ring_first_tag(size_, tag_base);
}

RhdAllreduce::~RhdAllreduce() { complete_in_destructor(*this); }

size_t RhdAllreduce::scratch_floats(size_t count) const {
  if (size_ == 1) return 0;
  const size_t half = rhd_half_floats(count, size_), fold = power_of_two(size_) ? 0 : count;
  if (wire_ == WireDtype::fp32) return std::max(half, fold);
  const size_t halves16 = std::max(2 * half, fold);  // 16-bit values
  return (halves16 + 1) / 2;
}

void RhdAllreduce::start(float* data, size_t count, float* scratch) {
  if (in_flight_) throw Error("RhdAllreduce::start: previous rhd all-reduce still in flight");
  data_ = data;
  scratch_ = scratch;
  count_ = count;
  half_ = rhd_half_floats(count, size_);
  if (size_ == 1) return;
  checked_mpi_count(count);  // the fold's message, the largest: it must fit MPI's int
  in_flight_ = true;
  step_ = -1;
  next_step();
}

bool RhdAllreduce::takes_part(int step) const {
  const int L = place_.steps;
  if (step == 0 || step == 2 * L + 1) return rank_ < 2 * (size_ - place_.pow2);
  return place_.vrank >= 0;
}

void RhdAllreduce::next_step() {
  const int last = 2 * place_.steps + 1;
  do ++step_;
  while (step_ <= last && !takes_part(step_));
  if (step_ > last) {
    in_flight_ = false;
    return;
  }
  post_step();
}

void RhdAllreduce::post_step() {
  const int L = place_.steps, p = place_.pow2, v = place_.vrank, tag = tag0_ + step_;
  const bool wire16 = wire_ != WireDtype::fp32;
  auto* send16 = reinterpret_cast<uint16_t*>(scratch_);
  uint16_t* recv16 = send16 + half_;  // [0, half) sent, [half, 2 half) received
  const MPI_Datatype type = wire16 ? MPI_UINT16_T : MPI_FLOAT;
  const auto to_rank = [&](int u) { return u < size_ - p ? 2 * u + 1 : u + (size_ - p); };
  requests_[0] = requests_[1] = MPI_REQUEST_NULL;

  if (step_ == 0 || step_ == 2 * L + 1) {  // fold or unfold: the whole buffer, one way
    const bool sends = (step_ == 0) == (rank_ % 2 == 0);
    const int peer = rank_ % 2 == 0 ? rank_ + 1 : rank_ - 1;
    const int n = checked_mpi_count(count_);
    if (sends) {
      const void* buf = data_;
      if (wire16) {
        encode_wire16(data_, send16, count_, wire_);
        buf = send16;
      }
      MPI_CHECK(MPI_Isend(buf, n, type, peer, tag, comm_, &requests_[1]));
    } else {
      void* buf = wire16 ? static_cast<void*>(send16) : (step_ == 0 ? static_cast<void*>(scratch_) : data_);
      MPI_CHECK(MPI_Irecv(buf, n, type, peer, tag, comm_, &requests_[0]));
    }
    return;
  }

  Range send{}, recv{};
  int partner = 0;
  if (step_ <= L) {  // halving: bit m = p' / 2^step
    const int m = p >> step_, base = v & ~(2 * m - 1);
    const bool upper = (v & m) != 0;
    send = blocks(count_, p, upper ? base : base + m, m);
    recv = blocks(count_, p, upper ? base + m : base, m);  // our half, the partner's copy
    partner = v ^ m;
  } else {  // doubling: bit m = 2^(step - L - 1)
    const int m = 1 << (step_ - L - 1), base = v & ~(m - 1);
    if (m == 1 && wire16) {  // halving done: round our finished block as the others will receive it
      const Range own = blocks(count_, p, v, 1);
      round_to_wire16(data_ + own.offset, own.count, wire_);
    }
    send = blocks(count_, p, base, m);
    recv = blocks(count_, p, base ^ m, m);
    partner = v ^ m;
  }
  const void* send_buf = data_ + send.offset;
  void* recv_buf = step_ <= L ? static_cast<void*>(scratch_) : data_ + recv.offset;
  if (wire16) {
    encode_wire16(data_ + send.offset, send16, send.count, wire_);
    send_buf = send16;
    recv_buf = recv16;
  }
  const int peer = to_rank(partner);
  MPI_CHECK(MPI_Irecv(recv_buf, checked_mpi_count(recv.count), type, peer, tag, comm_, &requests_[0]));
  MPI_CHECK(MPI_Isend(send_buf, checked_mpi_count(send.count), type, peer, tag, comm_, &requests_[1]));
}

void RhdAllreduce::finish_step() {
  const int L = place_.steps, p = place_.pow2, v = place_.vrank;
  const bool wire16 = wire_ != WireDtype::fp32;
  const auto* send16 = reinterpret_cast<const uint16_t*>(scratch_);
  const uint16_t* recv16 = send16 + half_;
  if (step_ == 0 || step_ == 2 * L + 1) {
    const bool received = (step_ == 0) == (rank_ % 2 == 1);
    if (received && step_ == 0) {
      if (wire16)
        add_decoded_wire16(data_, send16, count_, wire_);
      else
        add_into(data_, scratch_, count_);
    } else if (received && wire16) {
      decode_wire16(send16, data_, count_, wire_);
    }
  } else if (step_ <= L) {
    const int m = p >> step_, base = v & ~(2 * m - 1);
    const Range kept = blocks(count_, p, (v & m) != 0 ? base + m : base, m);
    if (wire16)
      add_decoded_wire16(data_ + kept.offset, recv16, kept.count, wire_);
    else
      add_into(data_ + kept.offset, scratch_, kept.count);
  } else if (wire16) {
    const int m = 1 << (step_ - L - 1), base = v & ~(m - 1);
    const Range got = blocks(count_, p, base ^ m, m);
    decode_wire16(recv16, data_ + got.offset, got.count, wire_);
  }
  next_step();
}

bool RhdAllreduce::advance(bool block) {
  while (in_flight_) {
    if (!step_requests_done(requests_, block)) return false;
    finish_step();
  }
  return true;
}

}  // namespace cifar
