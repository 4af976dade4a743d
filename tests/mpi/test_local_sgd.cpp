// Local SGD (comm/model_averaging.hpp) against a plain reference that holds every rank's weights
// and momentum in one process: plain averaged-gradient SGD for the first `start` steps, then
// each rank steps on its own gradients with its own momentum, and every K steps the weights
// become the ranks' average.
//
//   MatchesReference       every algorithm: each rank's weights within 1e-5 of the reference's
//                          replica of that rank, after every step
//   ReplicasEqualAfterAveraging  bitwise equal on every rank right after each averaging step,
//                          and (N > 1) different between averagings: momentum and gradients
//                          stay per rank
//
// Every verdict goes through all_ranks(), so no rank is left in a collective.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <vector>

#include "cifar_mpi/comm/allreduce.hpp"
#include "cifar_mpi/comm/model_averaging.hpp"
#include "cifar_mpi/optim/sgd_momentum.hpp"
#include "mpi/mpi_test_util.hpp"

namespace {

using cifar::AllreduceStrategy;
using cifar::testing::all_ranks;
using cifar::testing::same_bits_as_rank0;
using cifar::testing::world_rank;
using cifar::testing::world_size;

constexpr size_t kCount = 1000;
constexpr float kLr = 0.05f, kMomentum = 0.9f;

// Rank r's gradient at step s for weights w: depends on the weights, the rank and the step.
float grad(const std::vector<float>& w, int rank, int step, size_t i) {
  return (1.0f + 0.2f * static_cast<float>(rank)) * w[i] +
         static_cast<float>(std::sin(0.31 * static_cast<double>(i) + 1.3 * rank + 0.7 * step));
}

std::vector<float> initial() {
  std::vector<float> w(kCount);
  for (size_t i = 0; i < kCount; ++i) w[i] = 0.1f * static_cast<float>(std::cos(0.17 * static_cast<double>(i)));
  return w;
}

// The reference: every rank's replica, plain loops (momentum as SgdMomentum: v = m v + g; w -= lr v).
std::vector<std::vector<std::vector<float>>> reference(int n, size_t start, size_t period, int steps) {
  std::vector<std::vector<float>> w(n, initial()), v(n, std::vector<float>(kCount, 0.0f));
  std::vector<std::vector<std::vector<float>>> after;  // [step][rank]
  for (int s = 0; s < steps; ++s) {
    std::vector<std::vector<float>> g(n, std::vector<float>(kCount));
    for (int r = 0; r < n; ++r)
      for (size_t i = 0; i < kCount; ++i) g[r][i] = grad(w[r], r, s, i);
    if (static_cast<size_t>(s) < start)  // plain: every rank steps on the average
      for (size_t i = 0; i < kCount; ++i) {
        double sum = 0;
        for (int r = 0; r < n; ++r) sum += g[r][i];
        for (int r = 0; r < n; ++r) g[r][i] = static_cast<float>(sum / n);
      }
    for (int r = 0; r < n; ++r)
      for (size_t i = 0; i < kCount; ++i) {
        v[r][i] = kMomentum * v[r][i] + g[r][i];
        w[r][i] -= kLr * v[r][i];
      }
    if (static_cast<size_t>(s) >= start && (static_cast<size_t>(s) - start + 1) % period == 0)
      for (size_t i = 0; i < kCount; ++i) {
        double sum = 0;
        for (int r = 0; r < n; ++r) sum += w[r][i];
        for (int r = 0; r < n; ++r) w[r][i] = static_cast<float>(sum / n);
      }
    after.push_back(w);
  }
  return after;
}

struct Outcome {
  bool matches = true, equal_after_averaging = true, differ_between = false;
};

Outcome run(AllreduceStrategy strategy, size_t start, size_t period, int steps) {
  const int n = world_size(), me = world_rank();
  auto algo = cifar::make_allreduce(strategy, cifar::WireDtype::fp32, cifar::RingLayout::flat, MPI_COMM_WORLD);
  cifar::PeriodicAverager averager(period, start);
  cifar::SgdMomentum sgd(kCount, cifar::SgdOptions{kLr, kMomentum, 0.0f, false});
  const auto want = reference(n, start, period, steps);
  std::vector<float> w = initial(), scratch(algo.algo->scratch_floats(kCount) + 1);
  Outcome out;
  for (int s = 0; s < steps; ++s) {
    std::vector<float> g(kCount);
    for (size_t i = 0; i < kCount; ++i) g[i] = grad(w, me, s, i);
    if (static_cast<size_t>(s) < start) {
      algo.algo->start(g.data(), kCount, scratch.data());
      algo.algo->wait();
      for (float& x : g) x /= static_cast<float>(n);
    }
    sgd.step(w, g);
    cifar::StepCommStats stats;
    const bool averaging = averager.due(static_cast<size_t>(s));
    if (averaging) averager.average(w, *algo.algo, n, stats);
    for (size_t i = 0; i < kCount; ++i)
      out.matches = out.matches && std::abs(w[i] - want[s][me][i]) <= 1e-5f * (1.0f + std::abs(want[s][me][i]));
    const bool same = same_bits_as_rank0(w), all_same = all_ranks(same);
    if ((averaging || static_cast<size_t>(s) < start) && !same) {
      out.equal_after_averaging = false;
      ADD_FAILURE() << "step " << s << ": rank " << me << " differs from rank 0" << (averaging ? " after averaging" : "");
    }
    if (!averaging && static_cast<size_t>(s) >= start && !all_same) out.differ_between = true;
  }
  return out;
}

TEST(LocalSgd, DueSteps) {
  cifar::PeriodicAverager a(4, 10);
  for (size_t s = 0; s < 10; ++s) EXPECT_FALSE(a.due(s)) << s;
  EXPECT_FALSE(a.due(10));
  EXPECT_TRUE(a.due(13));
  EXPECT_TRUE(a.due(17));
  EXPECT_FALSE(a.due(18));
  EXPECT_TRUE(all_ranks(true));
}

TEST(LocalSgd, MatchesReference) {
  for (const auto strategy : {AllreduceStrategy::mpi, AllreduceStrategy::ring, AllreduceStrategy::rhd}) {
    const Outcome o = run(strategy, 3, 4, 15);
    EXPECT_TRUE(all_ranks(o.matches)) << to_string(strategy);
  }
}

TEST(LocalSgd, ReplicasEqualAfterAveraging) {
  const Outcome o = run(AllreduceStrategy::ring, 2, 3, 14);
  EXPECT_TRUE(all_ranks(o.equal_after_averaging));
  if (world_size() > 1) EXPECT_TRUE(all_ranks(o.differ_between));  // momentum and gradients per rank
}

}  // namespace
