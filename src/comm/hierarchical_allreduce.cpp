// Hierarchical ring all-reduce: three rings in sequence (see the header for why and what each
// link carries). A state machine over RingAllreduce, so the communication thread can poll it and
// sleep like the flat ring (gradient_reducer.hpp).
#include "cifar_mpi/comm/hierarchical_allreduce.hpp"

#include <exception>

#include "cifar_mpi/comm/ring_allreduce.hpp"
#include "cifar_mpi/util/error.hpp"

namespace cifar {

namespace {
// The segment local rank l owns after the reduce-scatter within its host.
RingSegment host_share(size_t count, const HostLayout& hosts) {
  const int l = hosts.local_rank(), per_host = hosts.ranks_per_host();
  return ring_segment(count, per_host, (l + 1) % per_host);
}
}  // namespace

size_t HierarchicalRingAllreduce::scratch_floats(size_t count, const HostLayout& hosts) {
  // The within-host rings need a segment of count / L; the cross-host ring's, (count / L) / H, is
  // never larger.
  return ring_scratch_floats(count, hosts.ranks_per_host());
}

HierarchicalRingAllreduce::~HierarchicalRingAllreduce() {
  if (!in_flight()) return;
  try {
    wait();
  } catch (const std::exception&) {
    // A destructor cannot report; MPI errors in wait() are reported to its callers.
  }
}

void HierarchicalRingAllreduce::start(float* data, size_t count, float* scratch, const HostLayout& hosts,
                                      int tag_base) {
  if (in_flight()) throw Error("HierarchicalRingAllreduce::start: previous all-reduce still in flight");
  if (!hosts.uniform())
    throw Error("hierarchical ring all-reduce needs the same number of ranks on every host");
  data_ = data;
  scratch_ = scratch;
  count_ = count;
  hosts_ = &hosts;
  tag_base_ = tag_base;
  phase_ = 0;
  try {
    start_phase();
  } catch (...) {
    phase_ = kDone;  // nothing was posted (a bad tag base or count): not in flight
    throw;
  }
}

void HierarchicalRingAllreduce::start_phase() {
  switch (phase_) {
    case 0:
      ring_.start(data_, count_, scratch_, hosts_->local(), tag_base_, RingPhases::reduce_scatter);
      break;
    case 1: {
      const RingSegment share = host_share(count_, *hosts_);
      ring_.start(data_ + share.offset, share.count, scratch_, hosts_->cross(), tag_base_);
      break;
    }
    case 2:
      ring_.start(data_, count_, scratch_, hosts_->local(), tag_base_, RingPhases::all_gather);
      break;
  }
}

bool HierarchicalRingAllreduce::progress() {
  while (in_flight()) {
    if (!ring_.progress()) return false;
    if (++phase_ < kDone) start_phase();
  }
  return true;
}

void HierarchicalRingAllreduce::wait() {
  while (in_flight()) {
    ring_.wait();
    if (++phase_ < kDone) start_phase();
  }
}

void hierarchical_ring_allreduce_sum(float* data, size_t count, float* scratch, const HostLayout& hosts,
                                     int tag_base) {
  HierarchicalRingAllreduce op;
  op.start(data, count, scratch, hosts, tag_base);
  op.wait();
}

void hierarchical_ring_allreduce_sum_wire16(float* data, size_t count, float* scratch, uint16_t* send16,
                                            uint16_t* recv16, WireDtype wire, const HostLayout& hosts,
                                            int tag_base) {
  if (!hosts.uniform())
    throw Error("hierarchical ring all-reduce needs the same number of ranks on every host");
  RingAllreduce within;
  within.start(data, count, scratch, hosts.local(), tag_base, RingPhases::reduce_scatter);
  within.wait();
  const RingSegment share = host_share(count, hosts);
  ring_allreduce_sum_wire16(data + share.offset, share.count, send16, recv16, wire, hosts.cross(), tag_base);
  within.start(data, count, scratch, hosts.local(), tag_base, RingPhases::all_gather);
  within.wait();
}

}  // namespace cifar
