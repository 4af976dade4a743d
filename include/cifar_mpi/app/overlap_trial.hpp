#pragma once
// --overlap keeps overlap only where it shortens the step. Overlap pays where the link is slow
// against the compute; where communication is CPU work on the cores backward needs (ranks of one
// host, simulated hosts' network stacks, a 10 Gbit/s link whose reduction takes ~1.5 ms) the
// polls and the kernel's work beside backward can cost more than they hide (docs/results.md,
// overlap in the other launch modes). No model of this machine's kernel and load predicts that
// as well as trying, so the run tries: after kWarmup steps, kTrialPairs pairs of one held-back and
// one overlapped step (the same bits either way: GradientReducer::set_step_overlap), in the order
// held, on | on, held | on, held | held, on, so that a load that rises or falls steadily through
// the trial favours neither kind; overlap stays if the median over the pairs of (overlapped -
// held back) is negative. A step's time is the slowest rank's (the step agreement's MPI_Allreduce
// gives every rank the same numbers, so every rank reaches the same verdict). (Measured on a shared
// machine: a plain alternation turned overlap off where it saved 7 ms a step, as the load rose
// through the trial.)
//
// Four pairs still judge wrongly now and then (once in 12 runs on a quiet 1 Gbit/s link: with
// single pairs wrong one time in six, as the noise there makes them, a median of four is wrong
// about one time in eight), and a verdict can go stale as the load or the link changes. So the
// verdict is reviewed for the rest of the run: global steps 2 and 3 of every kReferencePeriod
// steps take the other kind (held back while overlap is kept, as the in-run reference of the
// overlap figure, metrics/overlap_figure.hpp; overlapped while it is off), and with their
// neighbours, steps 1 and 4, make two more pairs in the same balanced order. The last
// kReviewPairs pairs (the trial's first) are the evidence; the verdict turns when at least
// kTurnPairs of them say the other kind was faster: a sign test, which one wild step cannot sway
// and a true difference wins within a few periods. A resumed run tries again (the link or the load
// may have changed). --no-overlap-trial keeps overlap on every step but the reference steps, and
// never turns (a study of what overlap does).
#include <array>
#include <cstddef>
#include <deque>
#include <string>
#include <vector>

namespace cifar {

class OverlapTrial {
 public:
  static constexpr size_t kWarmup = 2;          // run steps before the trial (first-touch, caches)
  static constexpr size_t kTrialPairs = 4;      // pairs of a held-back and an overlapped step
  static constexpr size_t kTrialSteps = 2 * kTrialPairs;
  static constexpr size_t kReferencePeriod = 50;  // after the trial: 2 steps of the other kind per period
  static constexpr size_t kReviewPairs = 8;       // the pairs a review weighs, the newest
  static constexpr size_t kTurnPairs = 6;         // of them, against the verdict, to turn it

  enum class Verdict { pending, keep, off };

  // overlap: the run's --overlap; trial: --overlap-trial; first_step: the run's first global step.
  OverlapTrial(bool overlap, bool trial, size_t first_step);

  // Whether global step `step` runs with its reductions beside backward.
  bool overlapped(size_t step) const;
  // Every rank: a step's time (t_data + t_comp + t_wait + t_update of the slowest rank), kept for
  // the trial's steps and the reviews'.
  void record(size_t step, double seconds);
  // After step `step`: a new verdict, or pending for none (the trial's at its last step; a review's
  // when its evidence turns against the verdict in force).
  Verdict verdict_due(size_t step) const;
  // The verdict, reached after step `step` (from step + 1 on).
  void decide(Verdict v, size_t step);

  Verdict verdict() const { return verdict_; }
  bool trying() const { return overlap_ && trial_; }
  // Over the evidence of the latest verdict, s (NaN before the first): the medians of its
  // overlapped and held-back steps and of the pairs' differences; the step it took effect; how
  // often a review turned the verdict.
  double overlapped_median() const { return median_on_; }
  double held_median() const { return median_off_; }
  double median_difference() const { return median_diff_; }  // over the pairs, overlapped - held back
  size_t decided_at() const { return decided_at_; }
  size_t turns() const { return turns_; }
  // The log's line for the latest verdict: "overlap kept: ..." / "overlap off from step N: ...".
  std::string describe() const;

 private:
  struct Pair {
    double on, held;  // s
  };
  bool in_trial(size_t step) const;
  bool reviewing(size_t step) const;  // `step` is one of a review's four (steps 1-4 of a period)
  size_t against() const;             // pairs of the evidence that speak against the verdict

  bool overlap_, trial_;
  size_t first_;
  Verdict verdict_ = Verdict::pending;
  size_t decided_at_ = 0, turns_ = 0;
  std::vector<double> times_;      // the trial's step times, by position
  std::array<double, 4> review_{};  // the current review's, steps 1-4 of its period
  std::deque<Pair> evidence_;  // the newest kReviewPairs pairs
  double median_on_, median_off_, median_diff_;
};

}  // namespace cifar
