// When the run writes a checkpoint, and which position it holds: the position after the step,
// as a resumed run must see it (the next epoch's first step after an epoch's last).
// Rank 0 takes the snapshot and its writer thread writes it (checkpoint_writer.hpp): a periodic
// checkpoint does not hold the next step up; the one of a stop signal and the one at the end are
// waited for, so the exit that follows leaves them on disk. Every rank remembers the global
// step, which a later fault's message names.
#include <spdlog/spdlog.h>

#include "cifar_mpi/util/clock.hpp"
#include "training_run.hpp"

namespace cifar {

namespace {

void write_checkpoint(TrainingRun& run, const CheckpointPosition& pos, bool wait, bool with_metrics = false) {
  const CheckpointExtras extras = run.model.send_less.checkpoint_state(run.setup.comm);  // collective
  if (run.setup.root) {
    run.checkpoints.writer->snapshot(run.model.arena, run.model.sgd.velocity(), pos,
                              with_metrics && run.metrics ? &*run.metrics : nullptr, extras);
    if (wait) run.checkpoints.writer->wait();
  }
  run.checkpoints.last_step = static_cast<long long>(pos.global_step);
  run.checkpoints.last_time = now_seconds();
}

}  // namespace

void checkpoint_after_step(TrainingRun& run, const RunResult& result, const EpochTally& tally, const StepPosition& at,
                           bool stopped) {
  const RunSetup& setup = run.setup;
  const CheckpointPosition next = at.step + 1 == setup.steps_per_epoch
                                      ? CheckpointPosition{at.epoch + 1, 0, at.global_step + 1}
                                      : CheckpointPosition{at.epoch, at.step + 1, at.global_step + 1};
  const auto every = setup.cfg.checkpoint_every;
  if (stopped) {  // every rank stops after the same step
    write_checkpoint(run, next, true);
    if (setup.root)
      spdlog::warn("stop signal: stopped after step {} (global step {}), checkpoint written to {}", at.step + 1,
                   at.global_step + 1, setup.checkpoint_path);
  } else if (run.checkpoints.due || (every > 0 && (at.global_step + 1) % static_cast<size_t>(every) == 0)) {
    // The metrics file up to this step too (the writer thread writes it just before the checkpoint),
    // so that a kill before the epoch's end loses no step record the checkpoint keeps (every rank
    // checkpoints after the same step: the gather matches).
    const double t0 = now_seconds();
    if (setup.with_metrics) {
      auto all = gather_step_records(std::span(result.steps).last(tally.steps), setup.comm);
      if (run.metrics) run.metrics->set_running_epoch(at.epoch + 1, std::move(all));
    }
    run.checkpoints.metrics_seconds += now_seconds() - t0;
    write_checkpoint(run, next, false, true);
  }
}

// The end of a --max-steps chunk is resumable too (only when --checkpoint names a file).
void checkpoint_at_end(TrainingRun& run, size_t global_step) {
  if (run.setup.cfg.checkpoint.empty()) return;
  const size_t in_epoch = global_step % run.setup.steps_per_epoch;
  write_checkpoint(run, {static_cast<int>(global_step / run.setup.steps_per_epoch), in_epoch, global_step}, true);
}

}  // namespace cifar
