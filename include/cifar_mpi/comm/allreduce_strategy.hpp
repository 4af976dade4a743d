#pragma once
// Which all-reduce averages the gradients (--allreduce) and how the ring and rhd treat ranks that
// share a host (--ring-layout). MPI-free, like wire_dtype.hpp, so the configuration (and its fuzzer)
// can name them without linking MPI.
#include <optional>
#include <string>

namespace cifar {

// rhd = recursive halving / doubling (comm/rhd_allreduce.hpp): 2 log2 N messages where the ring
// sends 2(N-1), for many ranks. auto_ = per bucket, the table's algorithm of least predicted time
// (link_model.hpp); it names no row itself.
enum class AllreduceStrategy { naive, mpi, ring, rhd, auto_ };

// How the ring and rhd treat ranks that share a host (MPI's collectives find hosts themselves):
// hosts = hierarchical (reduce-scatter within each host, the ring or rhd across hosts, all-gather
// within each host; comm/hierarchical_allreduce.hpp), flat = one ring or rhd over all ranks in
// rank order. The same as flat wherever a host has one rank or there is one host.
enum class RingLayout { hosts, flat };

inline std::string to_string(AllreduceStrategy s) {
  switch (s) {
    case AllreduceStrategy::naive: return "naive";
    case AllreduceStrategy::mpi: return "mpi";
    case AllreduceStrategy::ring: return "ring";
    case AllreduceStrategy::rhd: return "rhd";
    case AllreduceStrategy::auto_: return "auto";
  }
  return "?";
}

// The strategy to_string names so (the inverse; nullopt for any other text).
inline std::optional<AllreduceStrategy> strategy_from_string(const std::string& s) {
  for (AllreduceStrategy a : {AllreduceStrategy::naive, AllreduceStrategy::mpi, AllreduceStrategy::ring,
                              AllreduceStrategy::rhd, AllreduceStrategy::auto_})
    if (to_string(a) == s) return a;
  return std::nullopt;
}

inline std::string to_string(RingLayout l) { return l == RingLayout::hosts ? "hosts" : "flat"; }

}  // namespace cifar
