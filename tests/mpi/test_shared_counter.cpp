// SharedCounter: the ranks draw tickets at the same time, as fast as they can; together they must
// get 0 .. total-1, each exactly once (a lost or repeated increment shows as a duplicate or a
// gap). A counter over ranks on two (drawn) hosts is refused with the number of hosts, on every
// rank. Verdicts go through all_ranks() so all ranks agree.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "cifar_mpi/comm/shared_counter.hpp"
#include "cifar_mpi/util/error.hpp"
#include "mpi/mpi_test_util.hpp"

namespace {

using namespace cifar::testing;

TEST(SharedCounter, EveryTicketIsDrawnExactlyOnce) {
  constexpr int kDraws = 20000;
  cifar::SharedCounter counter(MPI_COMM_WORLD);
  std::vector<uint64_t> mine(kDraws);
  MPI_Barrier(MPI_COMM_WORLD);
  for (auto& t : mine) t = counter.draw();
  const int n = world_size();
  std::vector<uint64_t> all(static_cast<size_t>(kDraws) * static_cast<size_t>(n));
  MPI_Allgather(mine.data(), kDraws, MPI_UINT64_T, all.data(), kDraws, MPI_UINT64_T, MPI_COMM_WORLD);
  // Each rank's own tickets rise; together they are a permutation of 0 .. total-1.
  EXPECT_TRUE(all_ranks(std::is_sorted(mine.begin(), mine.end())));
  std::sort(all.begin(), all.end());
  bool permutation = true;
  for (size_t i = 0; i < all.size(); ++i) permutation = permutation && all[i] == i;
  EXPECT_TRUE(all_ranks(permutation)) << "tickets lost or drawn twice";
}

TEST(SharedCounter, TwoCountersAreIndependentAndStartAtZero) {
  cifar::SharedCounter a(MPI_COMM_WORLD), b(MPI_COMM_WORLD);
  if (world_rank() == 0) a.draw(), a.draw();
  MPI_Barrier(MPI_COMM_WORLD);
  const uint64_t from_b = b.draw();
  EXPECT_TRUE(all_ranks(from_b < static_cast<uint64_t>(world_size())));
}

TEST(SharedCounter, RanksOnSeveralHostsAreRefused) {
  if (world_size() < 2) GTEST_SKIP() << "needs 2 ranks to draw 2 hosts";
  std::string what;
  try {
    cifar::SharedCounter counter(MPI_COMM_WORLD, world_rank() % 2);
  } catch (const cifar::Error& e) {
    what = e.what();
  }
  EXPECT_TRUE(all_ranks(what.find("on 2 hosts") != std::string::npos)) << what;
}

}  // namespace
