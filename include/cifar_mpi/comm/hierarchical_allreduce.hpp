#pragma once
// Hierarchical all-reduce (sum), in place: the ring or rhd made aware of hosts.
//
// A flat ring over H hosts x L ranks (placed host by host) crosses each host's link once per
// step, so each link carries 2(N-1)/N of the buffer S, N = H*L: 1.5 S at 2 hosts x 2 ranks, where
// Open MPI's recursive halving sends S. This one does three things:
//
//   1. reduce-scatter within each host (shared memory, the ring engine of ring_allreduce.hpp):
//      local rank l ends with its host's sum of segment (l + 1) mod L of the buffer;
//   2. all-reduce of that segment across hosts, among the ranks with local rank l (one per
//      host): the L cross-host all-reduces of a host run side by side, each on 1/L of the buffer.
//      The cross-host step is the ring (2(H-1) messages) or rhd (rhd_allreduce.hpp: 2 log2 H
//      messages, and 2 more on the folded pairs where H is not a power of two): the latency
//      terms that grow with the number of hosts are those of this step;
//   3. all-gather within each host (the ring engine).
//
// Each host link then carries 2(H-1)/H of the buffer (rhd at a power of two H; with a fold, the
// folded pairs' links carry S more): S at 2 hosts, whatever L. With the ring across, L = 1 is the
// flat ring over all ranks and H = 1 the flat ring over the host: bitwise the same result as
// ring_allreduce_sum in both cases (with rhd across, L = 1 is flat rhd). Otherwise the sums are
// added in another order (a host's partial sums first), so the bits differ from the flat
// algorithm's, but every rank still ends with the same bits: each segment's final value is
// computed by one rank of the cross-host step, which copies it to the others, and then copied
// within each host.
//
// Needs the same number of ranks on every host (HostLayout::uniform()).
//
// With a 16-bit wire type (wire_format.hpp) only the cross-host step sends 16-bit values
// (its block owners round their copy so all its ranks agree); the within-host phases stay
// float32 over shared memory, where halving the bytes buys nothing.
//
// One phase sequence for both forms: progress() polls the running phase and starts the next;
// wait() blocks in each (blocking = start + wait).
#include <mpi.h>

#include <cstddef>
#include <memory>

#include "cifar_mpi/comm/allreduce.hpp"
#include "cifar_mpi/comm/host_layout.hpp"
#include "cifar_mpi/comm/ring_allreduce.hpp"
#include "cifar_mpi/comm/wire_dtype.hpp"

namespace cifar {

// The all-reduce of step 2, across hosts.
enum class CrossHostStep { ring, rhd };

class HierarchicalAllreduce final : public Allreduce {
 public:
  // Throws cifar::Error if the layout is not uniform. `hosts` must outlive this object.
  explicit HierarchicalAllreduce(const HostLayout& hosts, WireDtype wire = WireDtype::fp32, int tag_base = 0,
                                 CrossHostStep across = CrossHostStep::ring);
  // The same, owning its layout (the trainer's, made once at start-up).
  HierarchicalAllreduce(std::unique_ptr<HostLayout> hosts, WireDtype wire, CrossHostStep across);
  // Completes an operation still in flight, every phase of it: the other ranks wait for its messages.
  ~HierarchicalAllreduce() override;

  // The larger of the within-host rings' (a segment of count / L) and the cross-host step's.
  size_t scratch_floats(size_t count) const override;
  void start(float* data, size_t count, float* scratch) override;
  bool progress() override { return advance(false); }
  void wait() override { advance(true); }
  bool in_flight() const { return phase_ < kDone; }

 private:
  static constexpr int kDone = 3;
  bool advance(bool block);
  void start_phase();

  std::unique_ptr<HostLayout> owned_;
  const HostLayout& hosts_;
  RingAllreduce within_;             // float32 over local()
  std::unique_ptr<Allreduce> across_;  // ring or rhd, the wire type, over cross()
  float* data_ = nullptr;
  float* scratch_ = nullptr;
  size_t count_ = 0;
  int phase_ = kDone;
};

}  // namespace cifar
