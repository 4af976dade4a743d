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
// held back) is negative, each step's time being the slowest rank's (the step agreement's
// MPI_Allreduce gives every rank the same numbers, so every rank reaches the same verdict) for the
// rest of the run. (Measured on a shared machine: a plain alternation turned overlap off where it saved 7 ms a
// step, as the load rose through the trial.)
// A resumed run tries again (the link or the load may have changed). --no-overlap-trial keeps
// overlap on every step but the periodic reference steps (a study of what overlap does).
//
// After the trial, with overlap kept, global steps 2 and 3 of every kReferencePeriod steps are
// held back as before, the in-run reference of the overlap figure (metrics/overlap_figure.hpp);
// with overlap turned off every step is held back.
#include <cstddef>
#include <string>
#include <vector>

namespace cifar {

class OverlapTrial {
 public:
  static constexpr size_t kWarmup = 2;          // run steps before the trial (first-touch, caches)
  static constexpr size_t kTrialPairs = 4;      // pairs of a held-back and an overlapped step
  static constexpr size_t kTrialSteps = 2 * kTrialPairs;
  static constexpr size_t kReferencePeriod = 50;  // after the trial: 2 held-back steps per period

  enum class Verdict { pending, keep, off };

  // overlap: the run's --overlap; trial: --overlap-trial; first_step: the run's first global step.
  OverlapTrial(bool overlap, bool trial, size_t first_step);

  // Whether global step `step` runs with its reductions beside backward.
  bool overlapped(size_t step) const;
  // Every rank: a step's time (t_data + t_comp + t_wait + t_update of the slowest rank), kept for
  // the trial's steps.
  void record(size_t step, double seconds);
  // After step `step`: the verdict (pending until the trial's last step, then keep or off;
  // pending again afterwards).
  Verdict verdict_due(size_t step) const;
  // The verdict, reached after step `step` (from step + 1 on).
  void decide(Verdict v, size_t step);

  Verdict verdict() const { return verdict_; }
  bool trying() const { return overlap_ && trial_; }
  // Medians of the trial's steps, s (NaN before the verdict), and the step the verdict took effect.
  double overlapped_median() const { return median_on_; }
  double held_median() const { return median_off_; }
  double median_difference() const { return median_diff_; }  // over the pairs, overlapped - held back
  size_t decided_at() const { return decided_at_; }
  // The log's line for a verdict: "overlap kept: ..." / "overlap off from step N: ...".
  std::string describe() const;

 private:
  bool in_trial(size_t step) const;

  bool overlap_, trial_;
  size_t first_;
  Verdict verdict_ = Verdict::pending;
  size_t decided_at_ = 0;
  std::vector<double> times_;  // the trial's step times (slowest rank), by position in the trial
  double median_on_, median_off_, median_diff_;
};

}  // namespace cifar
