#include "cifar_mpi/app/overlap_trial.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace cifar {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double median(std::vector<double> v) {
  if (v.empty()) return kNaN;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Position i of the trial (0-based): pairs 0-3 are (held, on), (on, held), (on, held), (held, on).
bool trial_overlapped(size_t i) {
  const bool second = i % 2 == 1;
  const size_t pair = i / 2;
  return (pair == 0 || pair == 3) ? second : !second;
}

// Step `s` of a period (0-based) is a reference step: the kind the verdict does not choose.
bool reference_step(size_t s) { return s == 2 || s == 3; }

}  // namespace

OverlapTrial::OverlapTrial(bool overlap, bool trial, size_t first_step)
    : overlap_(overlap),
      trial_(trial),
      first_(first_step),
      times_(kTrialSteps, kNaN),
      median_on_(kNaN),
      median_off_(kNaN),
      median_diff_(kNaN) {
  if (overlap_ && !trial_) verdict_ = Verdict::keep;
}

bool OverlapTrial::in_trial(size_t step) const {
  return trying() && step >= first_ + kWarmup && step < first_ + kWarmup + kTrialSteps;
}

bool OverlapTrial::reviewing(size_t step) const {
  const size_t s = step % kReferencePeriod;
  return trying() && verdict_ != Verdict::pending && s >= 1 && s <= 4 && step + 1 - s >= decided_at_;
}

bool OverlapTrial::overlapped(size_t step) const {
  if (!overlap_) return false;
  if (in_trial(step)) return trial_overlapped(step - first_ - kWarmup);
  if (verdict_ == Verdict::pending) return step < first_ + kWarmup;  // (after the trial: not yet told)
  const bool reference = reference_step(step % kReferencePeriod);
  return verdict_ == Verdict::off ? reference && reviewing(step) : !reference;
}

void OverlapTrial::record(size_t step, double seconds) {
  if (in_trial(step)) {
    times_[step - first_ - kWarmup] = seconds;
    return;
  }
  if (!reviewing(step)) return;
  const size_t s = step % kReferencePeriod;
  review_[s - 1] = seconds;
  if (s != 4) return;
  // Pairs (1, 2) and (3, 4): the reference steps 2 and 3 are the other kind.
  const bool kept = verdict_ == Verdict::keep;
  evidence_.push_back(kept ? Pair{review_[0], review_[1]} : Pair{review_[1], review_[0]});
  evidence_.push_back(kept ? Pair{review_[3], review_[2]} : Pair{review_[2], review_[3]});
  while (evidence_.size() > kReviewPairs) evidence_.pop_front();
}

size_t OverlapTrial::against() const {
  return static_cast<size_t>(std::count_if(evidence_.begin(), evidence_.end(), [this](const Pair& p) {
    return verdict_ == Verdict::keep ? p.on > p.held : p.on < p.held;
  }));
}

OverlapTrial::Verdict OverlapTrial::verdict_due(size_t step) const {
  if (!trying()) return Verdict::pending;
  if (verdict_ == Verdict::pending) {
    if (step != first_ + kWarmup + kTrialSteps - 1) return Verdict::pending;
    std::vector<double> d;
    for (size_t i = 0; i + 1 < kTrialSteps; i += 2)
      d.push_back(trial_overlapped(i) ? times_[i] - times_[i + 1] : times_[i + 1] - times_[i]);
    return median(d) < 0 ? Verdict::keep : Verdict::off;
  }
  if (!reviewing(step) || step % kReferencePeriod != 4 || evidence_.size() < kReviewPairs || against() < kTurnPairs)
    return Verdict::pending;
  return verdict_ == Verdict::keep ? Verdict::off : Verdict::keep;
}

void OverlapTrial::decide(Verdict v, size_t step) {
  if (v == Verdict::pending || v == verdict_) return;
  if (verdict_ == Verdict::pending) {  // the trial's: its pairs are the first evidence
    for (size_t i = 0; i + 1 < kTrialSteps; i += 2)
      evidence_.push_back(trial_overlapped(i) ? Pair{times_[i], times_[i + 1]} : Pair{times_[i + 1], times_[i]});
  } else {
    ++turns_;
  }
  verdict_ = v;
  decided_at_ = step + 1;
  std::vector<double> on, off, diff;
  for (const Pair& p : evidence_) {
    on.push_back(p.on);
    off.push_back(p.held);
    diff.push_back(p.on - p.held);
  }
  median_on_ = median(on);
  median_off_ = median(off);
  median_diff_ = median(diff);
}

std::string OverlapTrial::describe() const {
  char buf[320];
  const double on = median_on_ * 1e3, off = median_off_ * 1e3, diff = median_diff_ * 1e3;
  const size_t n = evidence_.size();
  const bool kept = verdict_ == Verdict::keep;
  if (turns_ == 0 && kept)
    std::snprintf(buf, sizeof buf,
                  "overlap kept: steps with it %.2f ms, held back %.2f ms (medians of %zu each, slowest rank; "
                  "median pairwise difference %+.2f ms)",
                  on, off, n, diff);
  else if (turns_ == 0)
    std::snprintf(buf, sizeof buf,
                  "overlap off from step %zu: steps with it %.2f ms, held back %.2f ms (medians of %zu each, slowest "
                  "rank; median pairwise difference %+.2f ms): it did not shorten the step (--no-overlap-trial keeps it)",
                  decided_at_ + 1, on, off, n, diff);
  else
    std::snprintf(buf, sizeof buf,
                  "overlap %s from step %zu: the review's last %zu pairs, steps with it %.2f ms, held back %.2f ms "
                  "(medians, slowest rank; median pairwise difference %+.2f ms; %zu turn(s) so far)",
                  kept ? "back on" : "off", decided_at_ + 1, n, on, off, diff, turns_);
  return buf;
}

}  // namespace cifar
