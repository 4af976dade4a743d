// --overlap's trial: which steps run overlapped before, during and after it, and the verdict from
// the medians of the two kinds of step.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "cifar_mpi/app/overlap_trial.hpp"

namespace cifar {
namespace {

using V = OverlapTrial::Verdict;
constexpr size_t kFirstTrial = OverlapTrial::kWarmup, kLastTrial = OverlapTrial::kWarmup + OverlapTrial::kTrialSteps - 1;

// Runs a trial from `first` in which overlapped steps take `on` s and held-back ones `off` s.
OverlapTrial run_trial(size_t first, double on, double off) {
  OverlapTrial t(true, true, first);
  for (size_t s = first; s <= first + kLastTrial; ++s) {
    t.record(s, t.overlapped(s) ? on : off);
    const V v = t.verdict_due(s);
    EXPECT_EQ(v == V::pending, s != first + kLastTrial) << "step " << s;
    t.decide(v, s);
  }
  return t;
}

TEST(OverlapTrial, AlternatesDuringTheTrialOnly) {
  OverlapTrial t(true, true, 0);
  EXPECT_TRUE(t.overlapped(0));
  EXPECT_TRUE(t.overlapped(1));
  size_t held = 0, on = 0;
  std::string order;
  for (size_t s = kFirstTrial; s <= kLastTrial; ++s) {
    (t.overlapped(s) ? on : held) += 1;
    order += t.overlapped(s) ? 'B' : 'A';
    if ((s - kFirstTrial) % 2 == 1) EXPECT_NE(t.overlapped(s), t.overlapped(s - 1)) << "step " << s << ": a pair of one kind";
  }
  EXPECT_EQ(held, OverlapTrial::kTrialPairs);
  EXPECT_EQ(on, OverlapTrial::kTrialPairs);
  EXPECT_EQ(order, "ABBABAAB");  // a steady trend in the load adds as much to either kind
}

// Runs a trial whose step times rise (or fall) by `trend` s a step, overlapped steps `gain` s faster.
OverlapTrial run_trend(double trend, double gain) {
  OverlapTrial t(true, true, 0);
  for (size_t s = 0; s <= kLastTrial; ++s) {
    t.record(s, 0.070 + trend * double(s) - (t.overlapped(s) ? gain : 0.0));
    t.decide(t.verdict_due(s), s);
  }
  return t;
}

TEST(OverlapTrial, ALoadTrendDecidesNothing) {
  EXPECT_EQ(run_trend(0.005, 0.002).verdict(), V::keep) << "rising load hid a 2 ms gain";
  EXPECT_EQ(run_trend(-0.005, 0.002).verdict(), V::keep) << "falling load hid a 2 ms gain";
  EXPECT_EQ(run_trend(0.005, -0.002).verdict(), V::off) << "rising load hid a 2 ms loss";
  EXPECT_EQ(run_trend(-0.005, -0.002).verdict(), V::off) << "falling load hid a 2 ms loss";
}

TEST(OverlapTrial, KeepsOverlapThatShortensTheStep) {
  const OverlapTrial t = run_trial(0, 0.060, 0.070);
  ASSERT_EQ(t.verdict(), V::keep);
  EXPECT_EQ(t.decided_at(), kLastTrial + 1);
  EXPECT_DOUBLE_EQ(t.overlapped_median(), 0.060);
  EXPECT_DOUBLE_EQ(t.held_median(), 0.070);
  // After it: overlapped but for the periodic reference steps (2 and 3 of every 50).
  for (size_t s = kLastTrial + 1; s < 200; ++s)
    EXPECT_EQ(t.overlapped(s), s % OverlapTrial::kReferencePeriod != 2 && s % OverlapTrial::kReferencePeriod != 3)
        << "step " << s;
  EXPECT_NE(t.describe().find("overlap kept"), std::string::npos) << t.describe();
}

TEST(OverlapTrial, TurnsOffOverlapThatDoesNotShortenTheStep) {
  for (double on : {0.071, 0.070}) {  // slower, or no faster
    const OverlapTrial t = run_trial(40, on, 0.070);
    ASSERT_EQ(t.verdict(), V::off) << on;
    for (size_t s = 40 + kLastTrial + 1; s < 400; ++s) EXPECT_FALSE(t.overlapped(s)) << "step " << s;
    EXPECT_NE(t.describe().find("overlap off from step"), std::string::npos) << t.describe();
  }
}

TEST(OverlapTrial, MediansResistOneOutlier) {
  OverlapTrial t(true, true, 0);
  size_t k = 0;
  for (size_t s = 0; s <= kLastTrial; ++s) {
    // Overlapped steps are faster, but for one held-back step that the machine made very fast.
    const double off = (!t.overlapped(s) && k++ == 0) ? 0.001 : 0.070;
    t.record(s, t.overlapped(s) ? 0.060 : off);
    t.decide(t.verdict_due(s), s);
  }
  EXPECT_EQ(t.verdict(), V::keep);
}

TEST(OverlapTrial, WithoutTheTrialOrOverlap) {
  const OverlapTrial forced(true, false, 0);
  EXPECT_EQ(forced.verdict(), V::keep);
  for (size_t s = 0; s < 120; ++s) {
    const size_t r = s % OverlapTrial::kReferencePeriod;
    EXPECT_EQ(forced.overlapped(s), r != 2 && r != 3) << "step " << s;
    EXPECT_EQ(forced.verdict_due(s), V::pending);
  }
  const OverlapTrial none(false, true, 0);
  for (size_t s = 0; s < 60; ++s) EXPECT_FALSE(none.overlapped(s));
  EXPECT_EQ(none.verdict_due(kLastTrial), V::pending);
}

}  // namespace
}  // namespace cifar
