// --overlap's trial: which steps run overlapped before, during and after it, the verdict from the
// medians of the two kinds of step, and the review that turns a verdict the later steps refute.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

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
    const OverlapTrial t = run_trial(44, on, 0.070);  // the trial ends at step 53
    ASSERT_EQ(t.verdict(), V::off) << on;
    // After it: held back but for the review's steps 2 and 3 of every 50, from the first period
    // whose steps 1-4 all follow the verdict (not 51-54).
    for (size_t s = 44 + kLastTrial + 1; s < 400; ++s) {
      const size_t r = s % OverlapTrial::kReferencePeriod;
      EXPECT_EQ(t.overlapped(s), s >= 100 && (r == 2 || r == 3)) << "step " << s;
    }
    EXPECT_NE(t.describe().find("overlap off from step"), std::string::npos) << t.describe();
  }
}

// Runs steps first..last after a trial, overlapped ones taking on(step) s and held-back ones 0.070,
// with the verdicts of the reviews carried out; returns the steps at which the verdict turned.
template <typename OnTime>
std::vector<size_t> run_reviews(OverlapTrial& t, size_t first, size_t last, OnTime on) {
  std::vector<size_t> turned;
  for (size_t s = first; s <= last; ++s) {
    t.record(s, t.overlapped(s) ? on(s) : 0.070);
    const V v = t.verdict_due(s);
    if (v != V::pending) {
      EXPECT_NE(v, t.verdict()) << "step " << s << ": a review repeated the verdict in force";
      turned.push_back(s);
    }
    t.decide(v, s);
  }
  return turned;
}

TEST(OverlapTrial, AReviewTurnsAWrongVerdict) {
  // The trial's pairs said "slower" (say, a burst of load); from then on overlap saves 10 ms.
  OverlapTrial t = run_trial(0, 0.075, 0.070);
  ASSERT_EQ(t.verdict(), V::off);
  const auto turned = run_reviews(t, kLastTrial + 1, 1000, [](size_t) { return 0.060; });
  // Each review adds 2 pairs against; 6 of the newest 8 are needed: the third review (steps 151-154).
  ASSERT_EQ(turned.size(), 1u);
  EXPECT_EQ(turned[0], 154u);
  EXPECT_EQ(t.verdict(), V::keep);
  EXPECT_EQ(t.decided_at(), 155u);
  EXPECT_EQ(t.turns(), 1u);
  EXPECT_TRUE(t.overlapped(155));
  EXPECT_FALSE(t.overlapped(202)) << "kept again: the reference steps are held back";
  EXPECT_NE(t.describe().find("overlap back on from step 156"), std::string::npos) << t.describe();
  EXPECT_DOUBLE_EQ(t.overlapped_median(), 0.060);
}

TEST(OverlapTrial, AReviewTurnsAStaleVerdictAndStaysOnFewOutliers) {
  // Kept; from step 300 the link got fast and overlap costs 3 ms; before that, every other review
  // has one wild overlapped step (not enough to turn a true verdict).
  OverlapTrial t = run_trial(0, 0.060, 0.070);
  ASSERT_EQ(t.verdict(), V::keep);
  const auto turned = run_reviews(t, kLastTrial + 1, 700, [](size_t s) {
    if (s >= 300) return 0.073;
    return (s % 100 == 51) ? 0.500 : 0.060;
  });
  ASSERT_EQ(turned.size(), 1u) << "an outlier turned the verdict, or the stale one stayed";
  EXPECT_EQ(turned[0], 404u);  // the reviews at 301-304, 351-354, 401-404 bring 6 pairs against
  EXPECT_EQ(t.verdict(), V::off);
  EXPECT_NE(t.describe().find("overlap off from step 406"), std::string::npos) << t.describe();
}

TEST(OverlapTrial, NoTurnWhileTheVerdictHolds) {
  OverlapTrial kept = run_trial(0, 0.060, 0.070);
  EXPECT_TRUE(run_reviews(kept, kLastTrial + 1, 2000, [](size_t) { return 0.060; }).empty());
  OverlapTrial off = run_trial(0, 0.075, 0.070);
  EXPECT_TRUE(run_reviews(off, kLastTrial + 1, 2000, [](size_t) { return 0.075; }).empty());
  EXPECT_EQ(off.turns(), 0u);
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
