#pragma once
// The learning rate for every optimizer step, as a pure function of the 0-based global step t,
// with PyTorch's semantics so a run can be compared with a torch script step for step.
//
// lr_at(t) is the lr that optimizer step t uses: in torch, param_groups[0]['lr'] read before the
// t-th optimizer.step(), with scheduler.step() called once after every optimizer step (schedules
// advance per iteration, not per epoch). It keeps no state, so resuming at step t needs nothing
// but t (a checkpoint records the step, not the scheduler).
//
// With T = epochs * steps_per_epoch, Tw = round(warmup_epochs * steps_per_epoch) and
// lr = the scaled lr (below):
//   warm-up, t < Tw: LinearLR(start_factor = 1/Tw, end_factor = 1, total_iters = Tw)
//       lr * (1/Tw + (1 - 1/Tw) * t / Tw)      starts at lr/Tw, reaches lr at t = Tw
//   then the main schedule on u = t - Tw, as SequentialLR(milestones = [Tw]) runs it (the main
//   scheduler restarts at 0 when warm-up ends, so its milestones count from the end of warm-up):
//     constant: lr
//     step:     StepLR(step_size = step_epochs * steps_per_epoch, gamma): lr * gamma^floor(u / step_size)
//     cosine:   CosineAnnealingLR(T_max = T - Tw, eta_min = 0): lr * (1 + cos(pi * u / (T - Tw))) / 2
//     onecycle: OneCycleLR(max_lr = lr, total_steps = T) with torch's defaults: pct_start 0.3,
//               anneal cos, div_factor 25, final_div_factor 1e4, three_phase false. It has its own
//               warm-up (lr/25 up to lr over the first 30%), so warmup_epochs must be 0: the
//               constructor rejects anything else rather than silently ignore it. Momentum is
//               NOT cycled (as torch's cycle_momentum=False); the optimizer's stays fixed.
// Scaling to the global batch B, relative to a reference batch of 128 (Goyal et al.):
//   none: lr = base_lr;  linear: lr = base_lr * B/128;  sqrt: lr = base_lr * sqrt(B/128).
// Computed in double; tests/unit/test_lr_schedule.cpp checks it against torch's own schedulers
// (tests/fixtures/lr_schedule.txt, from tools/cifar_tools/make_lr_fixture.py) to 1e-6 relative.
#include <cstddef>
#include <string>
#include <string_view>

namespace cifar {

enum class LrScheduleKind { constant, step, cosine, onecycle };
enum class LrScaling { none, linear, sqrt };

// "constant|step|cosine|onecycle" and "none|linear|sqrt"; anything else throws cifar::Error
// naming the value and the accepted ones.
LrScheduleKind parse_lr_schedule(std::string_view name);
LrScaling parse_lr_scaling(std::string_view name);
std::string to_string(LrScheduleKind kind);
std::string to_string(LrScaling scaling);

inline constexpr size_t kLrReferenceBatch = 128;

struct LrScheduleOptions {
  double base_lr = 0.01;
  LrScaling scaling = LrScaling::none;
  size_t global_batch = kLrReferenceBatch;  // images per optimizer step summed over all ranks
  LrScheduleKind kind = LrScheduleKind::constant;
  double warmup_epochs = 0;  // may be fractional; rounded to whole steps
  size_t step_epochs = 0;    // step: decay every this many epochs (after warm-up); required > 0
  double gamma = 0.1;        // step: decay factor
  // onecycle (torch's defaults)
  double pct_start = 0.3;
  double div_factor = 25.0;
  double final_div_factor = 1e4;
};

class LrSchedule {
 public:
  // Throws cifar::Error for a schedule that cannot run: non-positive or non-finite lr, zero
  // steps_per_epoch, epochs or global batch, warm-up as long as the run or negative, step without
  // step_epochs, onecycle with warm-up or with fewer than two steps in a phase.
  LrSchedule(const LrScheduleOptions& options, size_t steps_per_epoch, size_t epochs);

  // The lr optimizer step t uses, 0 <= t < total_steps(); t outside throws cifar::Error
  // (torch's OneCycleLR raises there too, and cosine would start climbing again).
  double lr_at(size_t t) const;

  double scaled_lr() const { return scaled_lr_; }
  size_t total_steps() const { return total_steps_; }
  size_t warmup_steps() const { return warmup_steps_; }

 private:
  double main_lr(size_t u) const;  // u = t - warmup_steps_
  double onecycle_lr(size_t t) const;

  LrScheduleOptions options_;
  size_t steps_per_epoch_, total_steps_, warmup_steps_;
  double scaled_lr_;
};

}  // namespace cifar
