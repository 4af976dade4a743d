#include "cifar_mpi/app/overlap_trial.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace cifar {

namespace {

double median(std::vector<double> v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
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

// Per pair, the overlapped step's time minus the held-back one's.
std::vector<double> differences(const std::vector<double>& times) {
  std::vector<double> d;
  for (size_t i = 0; i + 1 < times.size(); i += 2)
    d.push_back(trial_overlapped(i) ? times[i] - times[i + 1] : times[i + 1] - times[i]);
  return d;
}

}  // namespace

OverlapTrial::OverlapTrial(bool overlap, bool trial, size_t first_step)
    : overlap_(overlap),
      trial_(trial),
      first_(first_step),
      times_(kTrialSteps, std::numeric_limits<double>::quiet_NaN()),
      median_on_(std::numeric_limits<double>::quiet_NaN()),
      median_off_(std::numeric_limits<double>::quiet_NaN()),
      median_diff_(std::numeric_limits<double>::quiet_NaN()) {
  if (overlap_ && !trial_) verdict_ = Verdict::keep;
}

bool OverlapTrial::in_trial(size_t step) const {
  return trying() && step >= first_ + kWarmup && step < first_ + kWarmup + kTrialSteps;
}

bool OverlapTrial::overlapped(size_t step) const {
  if (!overlap_) return false;
  if (in_trial(step)) return trial_overlapped(step - first_ - kWarmup);
  if (verdict_ == Verdict::off && step >= decided_at_) return false;
  if (verdict_ == Verdict::pending && trying() && step >= first_ + kWarmup) return false;  // (not yet told)
  if (trying() && step < first_ + kWarmup) return true;
  const size_t s = step % kReferencePeriod;
  return s != 2 && s != 3;
}

void OverlapTrial::record(size_t step, double seconds) {
  if (in_trial(step)) times_[step - first_ - kWarmup] = seconds;
}

OverlapTrial::Verdict OverlapTrial::verdict_due(size_t step) const {
  if (!trying() || verdict_ != Verdict::pending || step != first_ + kWarmup + kTrialSteps - 1) return Verdict::pending;
  return median(differences(times_)) < 0 ? Verdict::keep : Verdict::off;
}

void OverlapTrial::decide(Verdict v, size_t step) {
  if (v == Verdict::pending || verdict_ != Verdict::pending) return;
  verdict_ = v;
  decided_at_ = step + 1;
  std::vector<double> on, off;
  for (size_t i = 0; i < kTrialSteps; ++i) (trial_overlapped(i) ? on : off).push_back(times_[i]);
  median_on_ = median(on);
  median_off_ = median(off);
  median_diff_ = median(differences(times_));
}

std::string OverlapTrial::describe() const {
  char buf[256];
  const double on = median_on_ * 1e3, off = median_off_ * 1e3;
  if (verdict_ == Verdict::keep)
    std::snprintf(buf, sizeof buf,
                  "overlap kept: steps with it %.2f ms, held back %.2f ms (medians of %zu each, slowest rank; "
                  "median pairwise difference %+.2f ms)",
                  on, off, kTrialPairs, median_diff_ * 1e3);
  else
    std::snprintf(buf, sizeof buf,
                  "overlap off from step %zu: steps with it %.2f ms, held back %.2f ms (medians of %zu each, slowest rank; "
                  "median pairwise difference %+.2f ms): it did not shorten the step (--no-overlap-trial keeps it)",
                  decided_at_ + 1, on, off, kTrialPairs, median_diff_ * 1e3);
  return buf;
}

}  // namespace cifar
