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

}  // namespace

OverlapTrial::OverlapTrial(bool overlap, bool trial, size_t first_step)
    : overlap_(overlap),
      trial_(trial),
      first_(first_step),
      median_on_(std::numeric_limits<double>::quiet_NaN()),
      median_off_(std::numeric_limits<double>::quiet_NaN()) {
  if (overlap_ && !trial_) verdict_ = Verdict::keep;
}

bool OverlapTrial::in_trial(size_t step) const {
  return trying() && step >= first_ + kWarmup && step < first_ + kWarmup + kTrialSteps;
}

bool OverlapTrial::overlapped(size_t step) const {
  if (!overlap_) return false;
  if (in_trial(step)) return (step - first_ - kWarmup) % 2 == 1;  // held back first, then alternated
  if (verdict_ == Verdict::off && step >= decided_at_) return false;
  if (verdict_ == Verdict::pending && trying() && step >= first_ + kWarmup) return false;  // (not yet told)
  if (trying() && step < first_ + kWarmup) return true;
  const size_t s = step % kReferencePeriod;
  return s != 2 && s != 3;
}

void OverlapTrial::record(size_t step, double seconds) {
  if (!in_trial(step)) return;
  (overlapped(step) ? on_ : off_).push_back(seconds);
}

OverlapTrial::Verdict OverlapTrial::verdict_due(size_t step) const {
  if (!trying() || verdict_ != Verdict::pending || step != first_ + kWarmup + kTrialSteps - 1) return Verdict::pending;
  return median(on_) < median(off_) ? Verdict::keep : Verdict::off;
}

void OverlapTrial::decide(Verdict v, size_t step) {
  if (v == Verdict::pending || verdict_ != Verdict::pending) return;
  verdict_ = v;
  decided_at_ = step + 1;
  median_on_ = median(on_);
  median_off_ = median(off_);
}

std::string OverlapTrial::describe() const {
  char buf[256];
  const double on = median_on_ * 1e3, off = median_off_ * 1e3;
  if (verdict_ == Verdict::keep)
    std::snprintf(buf, sizeof buf,
                  "overlap kept: steps with it %.2f ms, held back %.2f ms (medians of %zu each, rank 0)", on, off,
                  kTrialPairs);
  else
    std::snprintf(buf, sizeof buf,
                  "overlap off from step %zu: steps with it %.2f ms, held back %.2f ms (medians of %zu each, rank 0): "
                  "it did not shorten the step (--no-overlap-trial keeps it)",
                  decided_at_ + 1, on, off, kTrialPairs);
  return buf;
}

}  // namespace cifar
