// run_training: the loop over epochs and steps. Each step is five calls (see training_run.hpp
// for where each one lives): train on this rank, agree across the ranks (faults, stop signals),
// record, checkpoint; each epoch ends with its record (evaluation, metrics).
#include "cifar_mpi/app/trainer.hpp"

#include <spdlog/spdlog.h>

#include <chrono>
#include <optional>

#include "cifar_mpi/comm/stall_watch.hpp"
#include "cifar_mpi/util/clock.hpp"
#include "cifar_mpi/util/mpi_check.hpp"
#include "training_run.hpp"

namespace cifar {

namespace {

// The background poller's interval (gradient_reducer.hpp), where the MPI library lets a second
// thread call it (else 0: backward's pauses alone).
std::chrono::microseconds background_poll_interval() {
  int provided = MPI_THREAD_SINGLE;
  MPI_CHECK(MPI_Query_thread(&provided));
  if (provided != MPI_THREAD_MULTIPLE) return std::chrono::microseconds{0};
  return kBackgroundPollInterval;
}

}  // namespace

RunResult run_training(const Config& cfg, MPI_Comm comm) {
  StallWatch watch(comm, cfg.stall_timeout);  // --stall-timeout (comm/stall_watch.hpp)
  std::optional<TrainingRun> built;
  {  // the set-up's collectives (data sizes, weights, resume, probes) wait for every rank too
    StallWatch::Phase p(&watch, "the set-up");
    built.emplace(cfg, comm);
  }
  TrainingRun& run = *built;
  const RunSetup& setup = run.setup;
  run.model.reducer.set_stall_watch(&watch);
  run.model.reducer.set_background_poll(background_poll_interval());
  run.model.send_less.set_stall_watch(&watch);
  using Phase = StallWatch::Phase;
  RunResult result;
  result.steps.reserve(setup.planned_steps);
  {
    Phase p(&watch, "the start-up barrier");
    run.start_clock();
  }
  size_t global_step = run.start.global_step;
  bool stopped = false, reached = false;  // a stop signal; --target-accuracy reached
  for (int epoch = run.start.epoch; epoch < cfg.epochs && global_step < setup.planned_steps && !stopped && !reached;
       ++epoch) {
    EpochTally tally{now_seconds()};
    const std::vector<size_t> order = epoch_order(setup, epoch);
    const size_t first_step = epoch == run.start.epoch ? run.start.step : 0;
    for (size_t step = first_step; step < setup.steps_per_epoch && global_step < setup.planned_steps;
         ++step, ++global_step) {
      const StepPosition at{epoch, step, global_step};
      watch.set_step(global_step);
      const StepOutcome outcome = train_step(run, order, at);
      {
        Phase p(&watch, "the step agreement");
        // throws, on every rank, if any rank has a fault
        stopped = agree_on_step(setup, run.checkpoints, run.overlap, outcome, at);
      }
      record_step(run, result, tally, outcome, at);
      checkpoint_after_step(run, result, tally, at, stopped);
      if (stopped) break;
      if (evaluation_due(setup, at)) {
        Phase p(&watch, "an evaluation (--eval-every)");
        if (evaluate_and_record(run, tally, global_step + 1)) {
          reached = true;  // every rank has the same test accuracy: all stop after this step
          ++global_step;
          break;
        }
      }
    }
    Phase p(&watch, "the epoch's end (evaluation, metrics)");
    reached |= record_epoch(run, result, tally, epoch, stopped, global_step);
  }
  if (global_step == run.start.global_step && global_step > 0 && global_step >= setup.planned_steps && !stopped &&
      !reached) {
    // Resumed at the run's last step (a restart after a failure in the final evaluation, or after
    // the last checkpoint): the run's end is done again, so that it reports its final accuracy.
    EpochTally tally{now_seconds()};
    Phase p(&watch, "the epoch's end (evaluation, metrics)");
    record_epoch(run, result, tally, static_cast<int>((global_step - 1) / setup.steps_per_epoch), false, global_step);
  }
  result.target = summarize_target(run.progress.evals, cfg.target_accuracy);
  if (setup.root && cfg.target_accuracy > 0 && !result.target.reached && !stopped)
    spdlog::warn("target {:.2f}% test accuracy not reached in {} step(s); the run ended normally",
                 100 * cfg.target_accuracy, global_step);
  result.total_wall = now_seconds() - run.progress.t_run;
  result.stopped = stopped;
  if (!stopped) checkpoint_at_end(run, global_step);
  if (run.checkpoints.writer) {  // the last periodic checkpoint is on disk before the run reports
    run.checkpoints.writer->wait();
    result.checkpoints_written = run.checkpoints.writer->written();
    result.checkpoint_seconds = run.checkpoints.writer->training_thread_seconds() + run.checkpoints.metrics_seconds;
    if (run.metrics) run.metrics->set_checkpoint_cost(result.checkpoints_written, result.checkpoint_seconds);
  }
  Phase p(&watch, "writing the outputs");
  if (run.overlap.verdict() != OverlapTrial::Verdict::pending && run.overlap.trying())
    result.overlap_trial = run.overlap.describe();
  write_outputs(run, result);
  return result;
}

}  // namespace cifar
