#pragma once
// Helpers for multi-rank gtests: all ranks must agree on a verdict, or one rank would exit
// while the others wait in a collective.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstring>
#include <span>
#include <vector>

#include "cifar_mpi/comm/allreduce.hpp"

namespace cifar::testing {

inline int world_rank() { int r = 0; MPI_Comm_rank(MPI_COMM_WORLD, &r); return r; }
inline int world_size() { int n = 1; MPI_Comm_size(MPI_COMM_WORLD, &n); return n; }

// True on every rank iff `ok` is true on every rank.
inline bool all_ranks(bool ok) {
  int mine = ok ? 1 : 0, all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return all == 1;
}

// Same length and the same bits (a NaN equals itself; 0.0 and -0.0 differ).
inline bool bits_equal(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// True on this rank iff its buffer is bitwise equal to rank 0's (rank 0's copy broadcast).
inline bool same_bits_as_rank0(std::span<const float> v) {
  std::vector<float> root(v.begin(), v.end());
  if (!root.empty()) MPI_Bcast(root.data(), static_cast<int>(root.size()), MPI_FLOAT, 0, MPI_COMM_WORLD);
  return bits_equal(root, v);
}

// Sums `data` in place with `algo` (waited on, or polled to completion) and exactly the scratch it
// asks for; false if it wrote past that scratch (a guard value) or is not complete.
inline bool run(cifar::Allreduce& algo, std::vector<float>& data, bool polled) {
  const size_t scratch_n = algo.scratch_floats(data.size());
  std::vector<float> scratch(scratch_n + 1, 0.0f);
  const float guard = -12345.0f;
  scratch[scratch_n] = guard;
  algo.start(data.data(), data.size(), scratch.data());
  if (polled)
    while (!algo.progress()) {
    }
  else
    algo.wait();
  return algo.progress() && scratch[scratch_n] == guard;
}

}  // namespace cifar::testing
