#pragma once
// Hierarchical ring all-reduce (sum), in place, float32: the ring made aware of hosts.
//
// A flat ring over H hosts x L ranks (placed host by host) crosses each host's link once per
// step, so each link carries 2(N-1)/N of the buffer S, N = H*L: 1.5 S at 2 hosts x 2 ranks, where
// Open MPI's recursive halving sends S. This one does three things, all with the ring of
// ring_allreduce_async.hpp:
//
//   1. reduce-scatter within each host (shared memory): local rank l ends with its host's sum
//      of segment (l + 1) mod L of the buffer;
//   2. ring all-reduce of that segment across hosts, among the ranks with local rank l (one per
//      host): the L rings of a host run side by side, each on 1/L of the buffer;
//   3. all-gather within each host.
//
// Each host link then carries 2(H-1)/H of the buffer: S at 2 hosts, whatever L. With L = 1 it is
// the flat ring over all ranks, and with H = 1 the flat ring over the host: bitwise the same
// result as ring_allreduce_sum in both cases. Otherwise the sums are added in another order (a
// host's partial sums first), so the bits differ from the flat ring's, but every rank still ends
// with the same bits: each segment's final value is computed by one cross-host ring, whose
// all-gather copies it, and then copied within each host.
//
// Needs the same number of ranks on every host (HostLayout::uniform()).
//
// With a 16-bit wire type (wire_format.hpp) only the cross-host ring sends 16-bit values
// (ring_allreduce_sum_wire16, whose segment owners round their copy so all its ranks agree); the
// within-host phases stay float32 over shared memory, where halving the bytes buys nothing.
#include <mpi.h>

#include <cstddef>
#include <cstdint>

#include "cifar_mpi/comm/host_layout.hpp"
#include "cifar_mpi/comm/wire_dtype.hpp"
#include "cifar_mpi/comm/ring_allreduce_async.hpp"

namespace cifar {

class HierarchicalRingAllreduce {
 public:
  HierarchicalRingAllreduce() = default;
  HierarchicalRingAllreduce(const HierarchicalRingAllreduce&) = delete;
  HierarchicalRingAllreduce& operator=(const HierarchicalRingAllreduce&) = delete;
  // Completes an operation still in flight, every phase of it: the other ranks wait for its messages.
  ~HierarchicalRingAllreduce();

  // Floats of scratch a buffer of `count` floats needs with this layout.
  static size_t scratch_floats(size_t count, const HostLayout& hosts);

  // Throws cifar::Error if an operation is in flight or the layout is not uniform.
  void start(float* data, size_t count, float* scratch, const HostLayout& hosts, int tag_base = 0);
  bool progress();  // true once the sum is complete
  void wait();
  bool in_flight() const { return phase_ < kDone; }

 private:
  static constexpr int kDone = 3;
  void start_phase();

  RingAllreduce ring_;
  float* data_ = nullptr;
  float* scratch_ = nullptr;
  size_t count_ = 0;
  const HostLayout* hosts_ = nullptr;
  int tag_base_ = 0, phase_ = kDone;
};

// Blocking form: start + wait.
void hierarchical_ring_allreduce_sum(float* data, size_t count, float* scratch, const HostLayout& hosts,
                                     int tag_base = 0);

// Blocking, 16-bit values on the links (bf16 or fp16). `scratch` as above; `send16` and `recv16`
// each hold ring_scratch_floats(count, N) values (N = all ranks), enough for the cross-host ring.
void hierarchical_ring_allreduce_sum_wire16(float* data, size_t count, float* scratch, uint16_t* send16,
                                            uint16_t* recv16, WireDtype wire, const HostLayout& hosts,
                                            int tag_base = 0);

}  // namespace cifar
