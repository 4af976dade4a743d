#include "cifar_mpi/optim/lr_schedule.hpp"

#include <cmath>
#include <numbers>

#include "cifar_mpi/util/error.hpp"

namespace cifar {
namespace {

// torch's _annealing_cos: from `start` at pct 0 to `end` at pct 1 along half a cosine.
double annealing_cos(double start, double end, double pct) {
  return end + (start - end) / 2.0 * (std::cos(std::numbers::pi * pct) + 1.0);
}

double scale_factor(LrScaling scaling, size_t global_batch) {
  const double ratio = static_cast<double>(global_batch) / static_cast<double>(kLrReferenceBatch);
  switch (scaling) {
    case LrScaling::none: return 1.0;
    case LrScaling::linear: return ratio;
    case LrScaling::sqrt: return std::sqrt(ratio);
  }
  throw Error("lr scaling: unknown value");
}

}  // namespace

LrScheduleKind parse_lr_schedule(std::string_view name) {
  if (name == "constant") return LrScheduleKind::constant;
  if (name == "step") return LrScheduleKind::step;
  if (name == "cosine") return LrScheduleKind::cosine;
  if (name == "onecycle") return LrScheduleKind::onecycle;
  throw Error("lr schedule '" + std::string(name) + "' is not one of constant, step, cosine, onecycle");
}

LrScaling parse_lr_scaling(std::string_view name) {
  if (name == "none") return LrScaling::none;
  if (name == "linear") return LrScaling::linear;
  if (name == "sqrt") return LrScaling::sqrt;
  throw Error("lr scaling '" + std::string(name) + "' is not one of none, linear, sqrt");
}

std::string to_string(LrScheduleKind kind) {
  switch (kind) {
    case LrScheduleKind::constant: return "constant";
    case LrScheduleKind::step: return "step";
    case LrScheduleKind::cosine: return "cosine";
    case LrScheduleKind::onecycle: return "onecycle";
  }
  return "unknown";
}

std::string to_string(LrScaling scaling) {
  switch (scaling) {
    case LrScaling::none: return "none";
    case LrScaling::linear: return "linear";
    case LrScaling::sqrt: return "sqrt";
  }
  return "unknown";
}

LrSchedule::LrSchedule(const LrScheduleOptions& options, size_t steps_per_epoch, size_t epochs)
    : options_(options), steps_per_epoch_(steps_per_epoch), total_steps_(steps_per_epoch * epochs), warmup_steps_(0) {
  if (!(std::isfinite(options.base_lr) && options.base_lr > 0))
    throw Error("lr schedule: base lr " + std::to_string(options.base_lr) + " must be a positive number");
  if (steps_per_epoch == 0 || epochs == 0)
    throw Error("lr schedule: steps per epoch (" + std::to_string(steps_per_epoch) + ") and epochs (" +
                std::to_string(epochs) + ") must both be positive");
  if (options.global_batch == 0) throw Error("lr schedule: global batch must be positive");
  scaled_lr_ = options.base_lr * scale_factor(options.scaling, options.global_batch);

  if (!(std::isfinite(options.warmup_epochs) && options.warmup_epochs >= 0))
    throw Error("lr schedule: warm-up epochs " + std::to_string(options.warmup_epochs) + " must be >= 0");
  warmup_steps_ = static_cast<size_t>(std::llround(options.warmup_epochs * static_cast<double>(steps_per_epoch)));
  if (warmup_steps_ >= total_steps_)
    throw Error("lr schedule: warm-up of " + std::to_string(warmup_steps_) + " steps leaves nothing of the " +
                std::to_string(total_steps_) + "-step run");

  switch (options.kind) {
    case LrScheduleKind::constant:
    case LrScheduleKind::cosine: break;
    case LrScheduleKind::step:
      if (options.step_epochs == 0) throw Error("lr schedule step: step epochs must be positive");
      if (!(std::isfinite(options.gamma) && options.gamma > 0))
        throw Error("lr schedule step: gamma " + std::to_string(options.gamma) + " must be a positive number");
      break;
    case LrScheduleKind::onecycle: {
      // OneCycleLR ramps up on its own; a second warm-up in front would change its shape.
      if (options.warmup_epochs != 0)
        throw Error("lr schedule onecycle has its own warm-up (pct_start " + std::to_string(options.pct_start) +
                    "): warm-up epochs must be 0");
      // torch divides by the length of each phase: both must be positive.
      const double phase1_end = options.pct_start * static_cast<double>(total_steps_) - 1.0;
      if (!(phase1_end > 0 && phase1_end < static_cast<double>(total_steps_) - 1.0))
        throw Error("lr schedule onecycle: pct_start " + std::to_string(options.pct_start) + " of " +
                    std::to_string(total_steps_) + " steps leaves an empty phase");
      if (!(options.div_factor > 0 && options.final_div_factor > 0))
        throw Error("lr schedule onecycle: div factors must be positive");
      break;
    }
  }
}

double LrSchedule::lr_at(size_t t) const {
  if (t >= total_steps_)
    throw Error("lr schedule: step " + std::to_string(t) + " is past the run's " + std::to_string(total_steps_) +
                " steps");
  if (options_.kind == LrScheduleKind::onecycle) return onecycle_lr(t);
  if (t < warmup_steps_) {
    // LinearLR's closed form: factor runs from start = 1/Tw linearly to 1 over Tw steps.
    const double start = 1.0 / static_cast<double>(warmup_steps_);
    const double factor = start + (1.0 - start) * static_cast<double>(t) / static_cast<double>(warmup_steps_);
    return scaled_lr_ * factor;
  }
  return main_lr(t - warmup_steps_);
}

double LrSchedule::main_lr(size_t u) const {
  switch (options_.kind) {
    case LrScheduleKind::constant: return scaled_lr_;
    case LrScheduleKind::step: {
      const size_t decays = u / (options_.step_epochs * steps_per_epoch_);
      return scaled_lr_ * std::pow(options_.gamma, static_cast<double>(decays));
    }
    case LrScheduleKind::cosine: {
      const double t_max = static_cast<double>(total_steps_ - warmup_steps_);
      return scaled_lr_ * (1.0 + std::cos(std::numbers::pi * static_cast<double>(u) / t_max)) / 2.0;
    }
    case LrScheduleKind::onecycle: return onecycle_lr(u);
  }
  throw Error("lr schedule: unknown kind");
}

// OneCycleLR.get_lr with three_phase false, step by step as torch writes it: phase 1 from
// max/div_factor up to max ending at step pct_start*T - 1 (a real number), phase 2 from max down
// to max/div_factor/final_div_factor ending at step T - 1.
double LrSchedule::onecycle_lr(size_t t) const {
  const double max_lr = scaled_lr_;
  const double initial_lr = max_lr / options_.div_factor;
  const double min_lr = initial_lr / options_.final_div_factor;
  const double phase1_end = options_.pct_start * static_cast<double>(total_steps_) - 1.0;
  const double phase2_end = static_cast<double>(total_steps_) - 1.0;
  const double step = static_cast<double>(t);
  if (step <= phase1_end) return annealing_cos(initial_lr, max_lr, step / phase1_end);
  return annealing_cos(max_lr, min_lr, (step - phase1_end) / (phase2_end - phase1_end));
}

}  // namespace cifar
