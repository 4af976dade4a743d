// Hierarchical ring all-reduce: three rings in sequence (see the header for why and what each
// link carries), one phase sequence polled or waited on, so the communication thread can sleep
// between polls like the flat ring (gradient_reducer.hpp).
#include "cifar_mpi/comm/hierarchical_allreduce.hpp"


#include "cifar_mpi/util/error.hpp"

namespace cifar {

namespace {
// The segment local rank l owns after the reduce-scatter within its host.
RingSegment host_share(size_t count, const HostLayout& hosts) {
  const int l = hosts.local_rank(), per_host = hosts.ranks_per_host();
  return ring_segment(count, per_host, (l + 1) % per_host);
}

const HostLayout& uniform(const HostLayout& hosts) {
  if (!hosts.uniform()) throw Error("hierarchical ring all-reduce needs the same number of ranks on every host");
  return hosts;
}
}  // namespace

HierarchicalRingAllreduce::HierarchicalRingAllreduce(const HostLayout& hosts, WireDtype wire, int tag_base)
    : hosts_(uniform(hosts)),
      within_(hosts.local(), WireDtype::fp32, tag_base),
      across_(hosts.cross(), wire, tag_base) {}

HierarchicalRingAllreduce::HierarchicalRingAllreduce(std::unique_ptr<HostLayout> hosts, WireDtype wire)
    : HierarchicalRingAllreduce(*hosts, wire) {
  owned_ = std::move(hosts);
}

HierarchicalRingAllreduce::~HierarchicalRingAllreduce() { complete_in_destructor(*this); }

size_t HierarchicalRingAllreduce::scratch_floats(size_t count) const {
  // The within-host rings need a segment of count / L; the cross-host ring's, (count / L) / H, is
  // never larger.
  return ring_scratch_floats(count, hosts_.ranks_per_host());
}

void HierarchicalRingAllreduce::start(float* data, size_t count, float* scratch) {
  if (in_flight()) throw Error("HierarchicalRingAllreduce::start: previous all-reduce still in flight");
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

void HierarchicalRingAllreduce::start_phase() {
  switch (phase_) {
    case 0:
      within_.start(data_, count_, scratch_, RingPhases::reduce_scatter);
      break;
    case 1: {
      const RingSegment share = host_share(count_, hosts_);
      across_.start(data_ + share.offset, share.count, scratch_);
      break;
    }
    case 2:
      within_.start(data_, count_, scratch_, RingPhases::all_gather);
      break;
  }
}

bool HierarchicalRingAllreduce::advance(bool block) {
  while (in_flight()) {
    RingAllreduce& ring = phase_ == 1 ? across_ : within_;
    if (block)
      ring.wait();
    else if (!ring.progress())
      return false;
    if (++phase_ < kDone) start_phase();
  }
  return true;
}

}  // namespace cifar
