// The all-reduce table: one row per algorithm, and the one rule that picks a row.
#include <memory>

#include "cifar_mpi/comm/allreduce.hpp"
#include "cifar_mpi/comm/hierarchical_allreduce.hpp"
#include "cifar_mpi/comm/host_layout.hpp"
#include "cifar_mpi/comm/mpi_allreduce.hpp"
#include "cifar_mpi/comm/rhd_allreduce.hpp"
#include "cifar_mpi/comm/ring_allreduce.hpp"
#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

namespace {

std::unique_ptr<Allreduce> make_mpi(MPI_Comm comm, WireDtype wire, std::unique_ptr<HostLayout>) {
  return std::make_unique<MpiAllreduce>(comm, wire);
}
std::unique_ptr<Allreduce> make_ring(MPI_Comm comm, WireDtype wire, std::unique_ptr<HostLayout>) {
  return std::make_unique<RingAllreduce>(comm, wire);
}
std::unique_ptr<Allreduce> make_rhd(MPI_Comm comm, WireDtype wire, std::unique_ptr<HostLayout>) {
  return std::make_unique<RhdAllreduce>(comm, wire);
}
std::unique_ptr<Allreduce> make_hierarchical_ring(MPI_Comm, WireDtype wire, std::unique_ptr<HostLayout> hosts) {
  return std::make_unique<HierarchicalAllreduce>(std::move(hosts), wire, CrossHostStep::ring);
}
std::unique_ptr<Allreduce> make_hierarchical_rhd(MPI_Comm, WireDtype wire, std::unique_ptr<HostLayout> hosts) {
  return std::make_unique<HierarchicalAllreduce>(std::move(hosts), wire, CrossHostStep::rhd);
}

constexpr AllreduceRow kTable[] = {
    {"naive", AllreduceStrategy::naive, false, make_mpi},  // per-tensor buckets: the planner's part
    {"mpi", AllreduceStrategy::mpi, false, make_mpi},
    {"ring", AllreduceStrategy::ring, false, make_ring},
    {"hierarchical ring", AllreduceStrategy::ring, true, make_hierarchical_ring},
    {"rhd", AllreduceStrategy::rhd, false, make_rhd},
    {"hierarchical rhd", AllreduceStrategy::rhd, true, make_hierarchical_rhd},
};

}  // namespace

std::span<const AllreduceRow> allreduce_table() { return kTable; }

ChosenAllreduce make_allreduce(AllreduceStrategy strategy, WireDtype wire, RingLayout layout, MPI_Comm comm,
                               int host_color) {
  int n = 1;
  MPI_CHECK(MPI_Comm_size(comm, &n));
  std::unique_ptr<HostLayout> hosts;
  std::string note;
  // The ring and rhd have hierarchical rows (within each host, then across hosts); MPI's
  // collectives find the hosts themselves.
  const bool has_hierarchical = strategy == AllreduceStrategy::ring || strategy == AllreduceStrategy::rhd;
  if (has_hierarchical && layout == RingLayout::hosts && n > 1) {
    // Collective on every rank alike (the configuration is the same on all).
    hosts = std::make_unique<HostLayout>(comm, host_color);
    if (!hosts->uniform()) note = " (flat " + to_string(strategy) + ": hosts have different numbers of ranks)";
    if (!hosts->hierarchical()) hosts.reset();
  }
  for (const AllreduceRow& row : kTable) {
    if (row.strategy != strategy || row.hierarchical != (hosts != nullptr)) continue;
    ChosenAllreduce chosen{nullptr, &row, row.name + note};
    if (hosts)
      chosen.description += " (" + std::to_string(hosts->hosts()) + " hosts x " +
                            std::to_string(hosts->ranks_per_host()) + " ranks)";
    chosen.algo = row.make(comm, wire, std::move(hosts));
    return chosen;
  }
  throw Error("no all-reduce for " + to_string(strategy));
}

}  // namespace cifar
