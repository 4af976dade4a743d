// Hierarchical all-reduce: a ring within each host, the ring or rhd across hosts, a ring within
// each host again (see the header for why and what each link carries), one phase sequence polled
// or waited on, so the communication thread can sleep between polls like the flat ring
// (gradient_reducer.hpp).
#include "cifar_mpi/comm/hierarchical_allreduce.hpp"

#include <algorithm>

#include "cifar_mpi/comm/rhd_allreduce.hpp"

#include "cifar_mpi/util/error.hpp"

namespace cifar {

namespace {
// The segment local rank l owns after the reduce-scatter within its host.
RingSegment host_share(size_t count, const HostLayout& hosts) {
  const int l = hosts.local_rank(), per_host = hosts.ranks_per_host();
  return ring_segment(count, per_host, (l + 1) % per_host);
}

const HostLayout& uniform(const HostLayout& hosts) {
  if (!hosts.uniform()) throw Error("hierarchical all-reduce needs the same number of ranks on every host");
  return hosts;
}

std::unique_ptr<Allreduce> make_across(CrossHostStep step, MPI_Comm cross, WireDtype wire, int tag_base) {
  if (step == CrossHostStep::rhd) return std::make_unique<RhdAllreduce>(cross, wire, tag_base);
  return std::make_unique<RingAllreduce>(cross, wire, tag_base);
}
}  // namespace

HierarchicalAllreduce::HierarchicalAllreduce(const HostLayout& hosts, WireDtype wire, int tag_base,
                                             CrossHostStep across)
    : hosts_(uniform(hosts)),
      within_(hosts.local(), WireDtype::fp32, tag_base),
      across_(make_across(across, hosts.cross(), wire, tag_base)) {}

HierarchicalAllreduce::HierarchicalAllreduce(std::unique_ptr<HostLayout> hosts, WireDtype wire, CrossHostStep across)
    : HierarchicalAllreduce(*hosts, wire, 0, across) {
  owned_ = std::move(hosts);
}

HierarchicalAllreduce::~HierarchicalAllreduce() { complete_in_destructor(*this); }

size_t HierarchicalAllreduce::scratch_floats(size_t count) const {
  // The within-host rings need the largest segment of count / L, the cross-host step runs on the
  // largest share (segment 0): the ring's need for it is smaller, rhd's (whole share for a fold)
  // may be as large or, with a 16-bit wire, a little larger. Both grow with count.
  const size_t share = ring_segment(count, hosts_.ranks_per_host(), 0).count;
  return std::max(ring_scratch_floats(count, hosts_.ranks_per_host()), across_->scratch_floats(share));
}

void HierarchicalAllreduce::start(float* data, size_t count, float* scratch) {
  if (in_flight()) throw Error("HierarchicalAllreduce::start: previous all-reduce still in flight");
  data_ = data;
  scratch_ = scratch;
  count_ = count;
  phase_ = 0;
  try {
    start_phase();
  } catch (...) {
    phase_ = kDone;  // nothing was posted (a count too large for MPI): not in flight
    throw;
  }
}

void HierarchicalAllreduce::start_phase() {
  switch (phase_) {
    case 0:
      within_.start(data_, count_, scratch_, RingPhases::reduce_scatter);
      break;
    case 1: {
      const RingSegment share = host_share(count_, hosts_);
      across_->start(data_ + share.offset, share.count, scratch_);
      break;
    }
    case 2:
      within_.start(data_, count_, scratch_, RingPhases::all_gather);
      break;
  }
}

bool HierarchicalAllreduce::advance(bool block) {
  while (in_flight()) {
    Allreduce& step = phase_ == 1 ? *across_ : static_cast<Allreduce&>(within_);
    if (block)
      step.wait();
    else if (!step.progress())
      return false;
    if (++phase_ < kDone) start_phase();
  }
  return true;
}

}  // namespace cifar
