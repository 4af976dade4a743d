// When the run writes a checkpoint, and which position it holds: the position after the step,
// as a resumed run must see it (the next epoch's first step after an epoch's last).
// Rank 0 writes; every rank remembers the global step, which a later fault's message names.
#include <spdlog/spdlog.h>

#include "training_run.hpp"

namespace cifar {

namespace {

void write_checkpoint(TrainingRun& run, const CheckpointPosition& pos) {
  const CheckpointExtras extras = run.send_less.checkpoint_state(run.comm);  // collective
  if (run.root) save_checkpoint(run.checkpoint_path, run.arena, run.sgd.velocity(), pos, run.identity,
                                  run.plan.text(run.world, run.cfg), extras);
  run.last_checkpoint_step = static_cast<long long>(pos.global_step);
}

}  // namespace

void checkpoint_after_step(TrainingRun& run, const StepPosition& at, bool stopped) {
  const CheckpointPosition next = at.step + 1 == run.steps_per_epoch
                                      ? CheckpointPosition{at.epoch + 1, 0, at.global_step + 1}
                                      : CheckpointPosition{at.epoch, at.step + 1, at.global_step + 1};
  const auto every = run.cfg.checkpoint_every;
  if (stopped) {  // every rank stops after the same step
    write_checkpoint(run, next);
    if (run.root)
      spdlog::warn("stop signal: stopped after step {} (global step {}), checkpoint written to {}", at.step + 1,
                   at.global_step + 1, run.checkpoint_path);
  } else if (every > 0 && (at.global_step + 1) % static_cast<size_t>(every) == 0) {
    write_checkpoint(run, next);
  }
}

// The end of a --max-steps chunk is resumable too (only when --checkpoint names a file).
void checkpoint_at_end(TrainingRun& run, size_t global_step) {
  if (run.cfg.checkpoint.empty()) return;
  const size_t in_epoch = global_step % run.steps_per_epoch;
  write_checkpoint(run, {static_cast<int>(global_step / run.steps_per_epoch), in_epoch, global_step});
}

}  // namespace cifar
