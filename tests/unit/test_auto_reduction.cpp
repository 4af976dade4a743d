// --allreduce auto and --bucket-mb auto, without MPI traffic: the bucket planner against a
// brute-force search over every set of boundaries, the choice of algorithm under synthetic
// alpha-beta costs, the least-squares fit on synthetic timings, and the link model file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <random>
#include <vector>

#include "scratch_dir.hpp"
#include "cifar_mpi/comm/bucket_plan.hpp"
#include "cifar_mpi/comm/link_model.hpp"
#include "cifar_mpi/util/error.hpp"

namespace cifar {
namespace {

// The reference: every subset of the L-1 inner boundaries, scored by predicted_end (an
// independent simulation of the same model); the least end, then the fewest buckets.
struct Best {
  double end = std::numeric_limits<double>::infinity();
  size_t buckets = 0;
};
Best brute_force(const std::vector<ReadyPoint>& ready, const ReductionCost& cost) {
  const size_t inner = ready.size() - 1;
  Best best;
  for (size_t mask = 0; mask < (size_t{1} << inner); ++mask) {
    std::vector<Bucket> b;
    size_t start = 0;
    for (size_t i = 0; i < ready.size(); ++i)
      if (i == inner || (mask >> i & 1)) {
        b.push_back({start, ready[i].floats - start});
        start = ready[i].floats;
      }
    const double end = predicted_end(b, ready, cost);
    if (end < best.end || (end == best.end && b.size() < best.buckets)) best = {end, b.size()};
  }
  return best;
}

TEST(AutoBuckets, MatchesBruteForceOnRandomSmallInputs) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  int split = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    const size_t layers = 1 + rng() % 7;
    std::vector<ReadyPoint> ready;
    size_t floats = 0;
    double t = 0;
    for (size_t i = 0; i < layers; ++i) {
      floats += 1 + rng() % 300000;
      t += u(rng) * 0.01;
      ready.push_back({floats, t});
    }
    const LinkCost a{u(rng) * 1e-3, u(rng) * 1e-8}, b{u(rng) * 1e-4, u(rng) * 3e-8};
    const ReductionCost cost = [&](size_t bytes) { return std::min(a.time(bytes), b.time(bytes)); };
    const std::vector<Bucket> plan = plan_overlapped_buckets(ready, cost);
    // A plan: contiguous, covers the arena, boundaries only at ready points.
    size_t end = 0;
    for (const Bucket& k : plan) {
      ASSERT_EQ(k.offset, end);
      ASSERT_TRUE(std::any_of(ready.begin(), ready.end(), [&](const ReadyPoint& p) { return p.floats == k.offset + k.count; }));
      end += k.count;
    }
    ASSERT_EQ(end, floats);
    const Best want = brute_force(ready, cost);
    const double got = predicted_end(plan, ready, cost);
    ASSERT_NEAR(got, want.end, 1e-12 * want.end) << "trial " << trial << ", " << layers << " layers";
    ASSERT_EQ(plan.size(), want.buckets) << "trial " << trial << ": not the fewest buckets of the optimum";
    split += plan.size() > 1;
  }
  EXPECT_GT(split, 100) << "the random inputs hardly ever split: the test is weak";
}

TEST(AutoBuckets, StartsTheBigEarlyTensorWhileBackwardGoesOn) {
  // The shape of SimpleCNN: fc2 (small) then fc1 (most bytes) ready early, conv2 slow to compute.
  const std::vector<ReadyPoint> ready{{1290, 0.001}, {296282, 0.004}, {314730, 0.030}, {315722, 0.031}};
  const LinkCost gbit{50e-6, 8e-9};  // ~1 Gbit/s
  const auto plan = plan_overlapped_buckets(ready, [&](size_t bytes) { return gbit.time(bytes); });
  ASSERT_GE(plan.size(), 2u);
  EXPECT_LE(plan.front().offset + plan.front().count, 296282u) << "fc1's bucket must start before conv2's backward";
  // One bucket would end at 0.031 + the whole reduction (10.1 ms); the plan hides 90% of it or more.
  const std::vector<Bucket> one{{0, 315722}};
  EXPECT_LT(predicted_end(plan, ready, [&](size_t b) { return gbit.time(b); }),
            predicted_end(one, ready, [&](size_t b) { return gbit.time(b); }) - 0.009);
}

TEST(AutoBuckets, TiesGoToThePlanThatSurvivesSlowerReductions) {
  // SimpleCNN's ready points at 1 Gbit/s on a 2-core machine (2 x the idle link's cost): fc1's
  // megabyte started at once or after conv2's weight gradient both end within conv1's backward.
  const std::vector<ReadyPoint> ready{{1290, 1.4e-5}, {296330, 1.07e-3}, {314826, 17.17e-3}, {315722, 38.07e-3}};
  const ReductionCost cost = [](size_t bytes) { return 2 * 7.515e-9 * static_cast<double>(bytes); };
  const auto fewest = plan_overlapped_buckets(ready, cost);
  ASSERT_EQ(fewest.size(), 2u);
  ASSERT_EQ(fewest.front().count, 314826u) << "the premise: the exact optimum starts fc1 with conv2";
  const auto robust = plan_robust_buckets(ready, cost, 1e-9);
  EXPECT_TRUE(std::any_of(robust.begin(), robust.end(), [](const Bucket& b) { return b.offset + b.count == 296330u; }))
      << "fc1's bucket starts before conv2's backward";
  EXPECT_NEAR(predicted_end(robust, ready, cost), predicted_end(fewest, ready, cost), 1e-12);
  // A plan that the true cost predicts later is never taken for robustness: with a bigger
  // tolerance than the difference it would be, with a smaller one not.
  const std::vector<ReadyPoint> steep{{1000, 0.001}, {300000, 0.002}, {301000, 0.010}};
  const ReductionCost slow = [](size_t bytes) { return 3e-8 * static_cast<double>(bytes); };
  const auto exact = plan_overlapped_buckets(steep, slow);
  const auto strict = plan_robust_buckets(steep, slow, 0);
  EXPECT_LE(predicted_end(strict, steep, slow), predicted_end(exact, steep, slow));
}

TEST(AutoBuckets, HighLatencyKeepsOneBucket) {
  const std::vector<ReadyPoint> ready{{100, 0.001}, {200, 0.002}, {300, 0.003}};
  const auto plan = plan_overlapped_buckets(ready, [](size_t) { return 1.0; });  // alpha dominates
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].count, 300u);
}

TEST(AutoAllreduce, PicksTheLeastPredictedTimePerSize) {
  LinkModel m;
  m.algorithms = {{AllreduceStrategy::mpi, "mpi", {100e-6, 1e-9}},
                  {AllreduceStrategy::ring, "ring", {300e-6, 0.5e-9}},
                  {AllreduceStrategy::rhd, "rhd", {20e-6, 2e-9}}};
  // rhd below 80 kB (20 + 2x < 100 + x), mpi up to 400 kB, the ring beyond.
  EXPECT_EQ(m.algorithms[m.best(4'000)].name, "rhd");
  EXPECT_EQ(m.algorithms[m.best(79'000)].name, "rhd");
  EXPECT_EQ(m.algorithms[m.best(81'000)].name, "mpi");
  EXPECT_EQ(m.algorithms[m.best(399'000)].name, "mpi");
  EXPECT_EQ(m.algorithms[m.best(401'000)].name, "ring");
  EXPECT_NEAR(m.time(1'000'000), 300e-6 + 0.5e-3, 1e-12);
  // A tie goes to the first row (table order), the same on every rank.
  LinkModel tie;
  tie.algorithms = {{AllreduceStrategy::ring, "ring", {1e-5, 1e-9}}, {AllreduceStrategy::rhd, "rhd", {1e-5, 1e-9}}};
  EXPECT_EQ(tie.best(12345), 0u);
  EXPECT_THROW(LinkModel{}.best(1), Error);
}

TEST(AutoAllreduce, CandidatesAreTheTablesNonNaiveStrategies) {
  const auto c = auto_candidates();
  EXPECT_NE(std::find(c.begin(), c.end(), AllreduceStrategy::mpi), c.end());
  EXPECT_NE(std::find(c.begin(), c.end(), AllreduceStrategy::ring), c.end());
  EXPECT_NE(std::find(c.begin(), c.end(), AllreduceStrategy::rhd), c.end());
  EXPECT_EQ(std::find(c.begin(), c.end(), AllreduceStrategy::naive), c.end());
  EXPECT_EQ(std::find(c.begin(), c.end(), AllreduceStrategy::auto_), c.end());
}

TEST(LinkFit, RecoversAlphaAndBetaFromSyntheticTimings) {
  const double alpha = 27e-6, beta = 8.4e-9;
  std::vector<double> x, y;
  for (double b : {4096.0, 16384.0, 65536.0, 262144.0, 1048576.0}) x.push_back(b), y.push_back(alpha + beta * b);
  const LinkCost c = fit_alpha_beta(x, y);
  EXPECT_NEAR(c.alpha, alpha, 1e-12);
  EXPECT_NEAR(c.beta, beta, 1e-15);
  // +-5% multiplicative noise: still within 10% on beta, and alpha of the right order.
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(0.95, 1.05);
  for (auto& t : y) t *= u(rng);
  const LinkCost n = fit_alpha_beta(x, y);
  EXPECT_NEAR(n.beta, beta, 0.1 * beta);
  EXPECT_GE(n.alpha, 0.0);
}

TEST(LinkFit, NeverNegativeAndDegenerateInputs) {
  // Timings that extrapolate below zero at 0 bytes: refit through the origin.
  const std::vector<double> x{1000, 2000, 3000}, y{1e-6, 3e-6, 5e-6};
  const LinkCost c = fit_alpha_beta(x, y);
  EXPECT_EQ(c.alpha, 0.0);
  EXPECT_GT(c.beta, 0.0);
  const std::vector<double> x1{4096}, y1{2e-5};
  const LinkCost one = fit_alpha_beta(x1, y1);
  EXPECT_EQ(one.beta, 0.0);
  EXPECT_DOUBLE_EQ(one.alpha, 2e-5);
  EXPECT_THROW(fit_alpha_beta({}, {}), Error);
}

TEST(LinkModelFile, RoundTripsAndNamesBadLines) {
  testing::ScratchDir dir;
  LinkModel m;
  m.algorithms = {{AllreduceStrategy::mpi, "mpi", {1.5e-5, 8.25e-9}},
                  {AllreduceStrategy::ring, "hierarchical ring", {3e-5, 4e-9}}};
  const auto path = (dir.path() / "link.txt").string();
  std::ofstream(path) << link_model_text(m);
  const LinkModel r = read_link_model(path);
  ASSERT_EQ(r.algorithms.size(), 2u);
  EXPECT_EQ(r.algorithms[1].name, "hierarchical ring");
  EXPECT_EQ(r.algorithms[1].strategy, AllreduceStrategy::ring);
  EXPECT_EQ(r.algorithms[0].cost.alpha, 1.5e-5);
  EXPECT_EQ(r.algorithms[0].cost.beta, 8.25e-9);
  std::ofstream(path) << "ring 1e-5 -2e-9 ring\n";
  try {
    read_link_model(path);
    FAIL() << "a negative beta was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":1"), std::string::npos) << e.what();
  }
  std::ofstream(path) << "carrier-pigeon 1 1\n";
  EXPECT_THROW(read_link_model(path), Error);
  EXPECT_THROW(read_link_model((dir.path() / "missing").string()), Error);
}

}  // namespace
}  // namespace cifar
