// gather_step_records and gather_run_environment at N = 1..4: rank 0 receives every rank's
// records as [step][rank]; the others receive nothing; the environment names one node.
#include <gtest/gtest.h>
#include <mpi.h>

#include <thread>
#include <vector>

#include "cifar_mpi/metrics/metrics_file.hpp"
#include "mpi/mpi_test_util.hpp"

namespace cifar {
namespace {

using cifar::testing::all_ranks;
using cifar::testing::world_rank;
using cifar::testing::world_size;

TEST(MetricsGather, RankZeroGetsStepByRankLayout) {
  const int rank = world_rank(), n = world_size();
  constexpr size_t kSteps = 5;
  std::vector<StepRecord> mine(kSteps);
  for (size_t s = 0; s < kSteps; ++s) {
    mine[s].t_comp = 100.0 * rank + static_cast<double>(s);
    mine[s].loss = 0.5 * rank;
    mine[s].comm_calls = static_cast<uint32_t>(rank + 1);
    mine[s].comm_bytes = (uint64_t{1} << 40) + static_cast<uint64_t>(s);  // exact through the double packing
  }
  const auto all = gather_step_records(mine, MPI_COMM_WORLD);
  bool ok = true;
  if (rank == 0) {
    ok = all.size() == kSteps * static_cast<size_t>(n);
    for (size_t s = 0; ok && s < kSteps; ++s)
      for (int r = 0; r < n; ++r) {
        const StepRecord& x = all[s * n + r];
        ok = ok && x.t_comp == 100.0 * r + static_cast<double>(s) && x.loss == 0.5 * r &&
             x.comm_calls == static_cast<uint32_t>(r + 1) && x.comm_bytes == (uint64_t{1} << 40) + s;
      }
  } else {
    ok = all.empty();
  }
  EXPECT_TRUE(all_ranks(ok));
}

TEST(MetricsGather, EnvironmentOfOneNode) {
  const RunEnvironment env = gather_run_environment(MPI_COMM_WORLD);
  bool ok = env.world_size == world_size() && env.nodes == 1 && env.ranks_per_node == world_size() &&
            !env.hosts.empty() && env.hosts.find(',') == std::string::npos;
  const unsigned hw = std::thread::hardware_concurrency();
  ok = ok && env.oversubscribed == (hw > 0 && static_cast<unsigned>(world_size()) > hw);
  EXPECT_TRUE(all_ranks(ok)) << "world " << env.world_size << " nodes " << env.nodes << " per node "
                             << env.ranks_per_node << " hosts '" << env.hosts << "'";
}

}  // namespace
}  // namespace cifar
