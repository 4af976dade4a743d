#pragma once
// The ranks of a communicator grouped by host, for the hierarchical ring
// (hierarchical_allreduce.hpp): `local` holds the ranks on this rank's host, `cross` the ranks
// that have this rank's local rank on every host (one per host, in rank order).
//
// A host is a shared-memory domain (MPI_COMM_TYPE_SHARED): what Open MPI reaches without a
// network link. Tests can draw hosts of their own on one machine with `host_color`.
#include <mpi.h>

namespace cifar {

class HostLayout {
 public:
  // Collective over `comm`. host_color < 0: hosts are shared-memory domains; otherwise the
  // ranks that pass the same color form one host (every rank must pass a color >= 0 then).
  explicit HostLayout(MPI_Comm comm, int host_color = -1);
  ~HostLayout();
  HostLayout(const HostLayout&) = delete;
  HostLayout& operator=(const HostLayout&) = delete;

  MPI_Comm local() const { return local_; }
  MPI_Comm cross() const { return cross_; }
  int local_rank() const { return local_rank_; }
  int ranks_per_host() const { return ranks_per_host_; }  // this host's
  int hosts() const { return hosts_; }                    // size of cross()
  // Every host has the same number of ranks: then every cross() has one rank per host.
  bool uniform() const { return uniform_; }
  // Worth a hierarchical ring: several hosts, several ranks on each, the same number on all
  // (otherwise the hierarchical ring is the flat one, or not possible). The same on every rank.
  bool hierarchical() const { return uniform_ && hosts_ > 1 && ranks_per_host_ > 1; }

 private:
  void free_comms();

  MPI_Comm local_ = MPI_COMM_NULL, cross_ = MPI_COMM_NULL;
  int local_rank_ = 0, ranks_per_host_ = 1, hosts_ = 1;
  bool uniform_ = true;
};

}  // namespace cifar
