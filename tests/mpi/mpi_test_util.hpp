#pragma once
// Helpers for multi-rank gtests: all ranks must agree on a verdict, or one rank would exit
// while the others wait in a collective.
#include <gtest/gtest.h>
#include <mpi.h>

namespace cifar::testing {

inline int world_rank() { int r = 0; MPI_Comm_rank(MPI_COMM_WORLD, &r); return r; }
inline int world_size() { int n = 1; MPI_Comm_size(MPI_COMM_WORLD, &n); return n; }

// True on every rank iff `ok` is true on every rank.
inline bool all_ranks(bool ok) {
  int mine = ok ? 1 : 0, all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return all == 1;
}

}  // namespace cifar::testing
