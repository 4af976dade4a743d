#pragma once
// Hierarchical ring all-reduce (sum), in place: the ring made aware of hosts.
//
// A flat ring over H hosts x L ranks (placed host by host) crosses each host's link once per
// step, so each link carries 2(N-1)/N of the buffer S, N = H*L: 1.5 S at 2 hosts x 2 ranks, where
// Open MPI's recursive halving sends S. This one does three things, all with the ring engine of
// ring_allreduce.hpp:
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
// (its segment owners round their copy so all its ranks agree); the within-host phases stay
// float32 over shared memory, where halving the bytes buys nothing.
//
// One phase sequence for both forms: progress() polls the running ring and starts the next
// phase; wait() blocks in each (blocking = start + wait).
#include <mpi.h>

#include <cstddef>
#include <memory>

#include "cifar_mpi/comm/allreduce.hpp"
#include "cifar_mpi/comm/host_layout.hpp"
#include "cifar_mpi/comm/ring_allreduce.hpp"
#include "cifar_mpi/comm/wire_dtype.hpp"

namespace cifar {

class HierarchicalRingAllreduce final : public Allreduce {
 public:
  // Throws cifar::Error if the layout is not uniform. `hosts` must outlive this object.
  explicit HierarchicalRingAllreduce(const HostLayout& hosts, WireDtype wire = WireDtype::fp32, int tag_base = 0);
  // The same, owning its layout (the trainer's, made once at start-up).
  HierarchicalRingAllreduce(std::unique_ptr<HostLayout> hosts, WireDtype wire);
  // Completes an operation still in flight, every phase of it: the other ranks wait for its messages.
  ~HierarchicalRingAllreduce() override;

  // The within-host segment, which the cross-host ring's (float32 or two 16-bit) never exceeds.
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
  RingAllreduce within_, across_;  // float32 over local(); the wire type over cross()
  float* data_ = nullptr;
  float* scratch_ = nullptr;
  size_t count_ = 0;
  int phase_ = kDone;
};

}  // namespace cifar
