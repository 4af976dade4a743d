#pragma once
// --compress powersgd and --local-sgd K in the training step: from their start step on, they
// take the gradient reducer's place (it reduces nothing that step).
//   compress:  after backward, PowerSGD averages the gradients (comm/powersgd.hpp). With
//              --overlap the reducer's buckets are not used: compression runs after backward.
//   local SGD: no gradient exchange; after the update, every K steps the ranks average the
//              weights (comm/model_averaging.hpp).
// Both run on one all-reduce of the table (allreduce.hpp) made for them: --allreduce's (auto:
// the plan's first bucket's; naive: mpi), with --wire-dtype and --ring-layout.
// Private to src/app.
#include <mpi.h>

#include <memory>
#include <optional>
#include <span>
#include <string>

#include "cifar_mpi/app/checkpoint.hpp"
#include "cifar_mpi/app/config.hpp"
#include "cifar_mpi/comm/allreduce.hpp"
#include "cifar_mpi/comm/gradient_reducer.hpp"
#include "cifar_mpi/comm/model_averaging.hpp"
#include "cifar_mpi/comm/powersgd.hpp"
#include "cifar_mpi/comm/stall_watch.hpp"
#include "cifar_mpi/comm/link_model.hpp"
#include "cifar_mpi/model/param_arena.hpp"
#include "compression_forecast.hpp"

namespace cifar {

class SendLess {
 public:
  // Collective (makes the all-reduce) when either method is on; nothing otherwise. With
  // --compress powersgd, or a link model from --allreduce auto (`planned_link`), it forecasts
  // whether compression pays (compression_forecast.hpp; without a planned link it takes the
  // --link-model file's, `link_file`, or probes the link): forecast().
  SendLess(const Config& cfg, const ParamArena& arena, AllreduceStrategy planned,
           const std::optional<LinkModel>& planned_link, const std::optional<LinkModel>& link_file, MPI_Comm comm);
  // Once the steps per epoch are known: where auto starts.
  void set_steps_per_epoch(size_t steps_per_epoch);

  bool on() const { return powersgd_.has_value() || averager_.has_value(); }
  // This step is PowerSGD's or local SGD's: the reducer sits it out.
  bool takes_over(size_t global_step) const { return on() && global_step >= start_; }
  // At a step's start: remembers takes_over(global_step) for active() (backward's hook asks).
  bool begin_step(size_t global_step) { return active_ = takes_over(global_step); }
  bool active() const { return active_; }
  bool compressing() const { return powersgd_.has_value(); }
  size_t start() const { return start_; }

  // As GradientReducer::set_stall_watch: each exchange starts with the arrival check (who is late,
  // and how long this rank waited: not communication time) and is a watched phase.
  void set_stall_watch(StallWatch* watch) { watch_ = watch; }

  // Collective, after backward (PowerSGD).
  void reduce_gradients(std::span<float> grads, StepCommStats& stats);
  // Collective, after the update (local SGD): averages the weights when due; stats empty if not.
  void after_update(std::span<float> params, size_t global_step, StepCommStats& stats);
  // Bytes a rank sends into the all-reduces in a step it takes over (local SGD: an averaging step's).
  size_t bytes_per_step(size_t arena_floats) const;

  // Collective: PowerSGD's state for the checkpoint, on rank 0 (powersgd/q, the same on every rank;
  // powersgd/error, every rank's in rank order); empty elsewhere and without PowerSGD.
  CheckpointExtras checkpoint_state(MPI_Comm comm) const;
  // Collective: rank 0 reads that state from `path` and gives each rank its own (nothing happens
  // when the checkpoint has none: it was written without PowerSGD).
  void resume_state(const std::string& path, MPI_Comm comm);

  const std::optional<CompressionForecast>& forecast() const { return forecast_; }

  PowerSgd* powersgd() { return powersgd_ ? &*powersgd_ : nullptr; }
  // For the start-up line: "PowerSGD rank 4 from step 20 (4 matrices, 29.3x fewer bytes), ring".
  std::string describe(size_t arena_floats) const;

 private:
  const Config& cfg_;
  int world_ = 1;
  size_t start_ = 0;
  bool active_ = false;
  std::optional<PowerSgd> powersgd_;
  std::optional<PeriodicAverager> averager_;
  ChosenAllreduce algo_;
  std::optional<CompressionForecast> forecast_;
  StallWatch* watch_ = nullptr;
};

}  // namespace cifar
