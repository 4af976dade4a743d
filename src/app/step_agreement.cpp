// The one collective per step, which decides for every rank alike: a numerical fault on any rank
// ends the run here, before this step's checkpoint, metrics or weights are written; otherwise a
// stop signal on any rank makes every rank checkpoint after this same step. One MPI_Allreduce
// of four integers carries them, the timed checkpoint's decision and the slowest rank's step time
// (--overlap's trial), so agreeing costs a step nothing measurable.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "cifar_mpi/app/run_checks.hpp"
#include "cifar_mpi/app/stop_signal.hpp"
#include "cifar_mpi/util/clock.hpp"
#include "cifar_mpi/util/mpi_check.hpp"
#include "cifar_mpi/util/mpi_text.hpp"
#include "training_run.hpp"

namespace cifar {

namespace {

// The fault's message as its rank words it: where it happened, and the checkpoint to go back to.
std::string fault_message(const RunSetup& setup, const CheckpointState& checkpoints, const std::string& fault,
                          const StepPosition& at) {
  std::string msg = fault + " at epoch " + std::to_string(at.epoch + 1) + " step " + std::to_string(at.step + 1) +
                    " (global step " + std::to_string(at.global_step + 1) + ") on rank " + std::to_string(setup.rank) +
                    " (learning rate too high?)";
  if (checkpoints.last_step >= 0)
    msg += "; " + setup.checkpoint_path + " keeps the checkpoint of global step " +
           std::to_string(checkpoints.last_step);
  return msg;
}

}  // namespace

bool agree_on_step(const RunSetup& setup, CheckpointState& checkpoints, OverlapTrial& overlap,
                   const StepOutcome& outcome, const StepPosition& at) {
  const int world = setup.world, rank = setup.rank;
  // flags[1]: the worst kind of fault, then the lowest rank that has it (encoded so MAX finds both).
  // flags[2]: --checkpoint-every TIME is due by rank 0's clock (the ranks' clocks may differ).
  const bool due = setup.root && setup.cfg.checkpoint_seconds > 0 &&
                   now_seconds() - checkpoints.last_time >= setup.cfg.checkpoint_seconds;
  // flags[3]: this step's time in nanoseconds, whose MAX is the slowest rank's step: what --overlap's
  // trial weighs, the same numbers on every rank, so every rank reaches the same verdict.
  const StepRecord& r = outcome.record;
  const double step_seconds = r.t_data + r.t_comp + r.t_wait + r.t_update;
  long long flags[4] = {stop_signal_received() ? 1 : 0,
                        outcome.fault_kind ? outcome.fault_kind * world + (world - 1 - rank) : 0, due ? 1 : 0,
                        std::isfinite(step_seconds) ? std::llround(std::clamp(step_seconds, 0.0, 1e6) * 1e9) : 0};
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, flags, 4, MPI_LONG_LONG, MPI_MAX, setup.comm));
  checkpoints.due = flags[2] != 0;
  overlap.record(at.global_step, static_cast<double>(flags[3]) * 1e-9);
  if (const OverlapTrial::Verdict verdict = overlap.verdict_due(at.global_step);
      verdict != OverlapTrial::Verdict::pending) {
    overlap.decide(verdict, at.global_step);
    if (setup.root) spdlog::info("{}", overlap.describe());
  }
  if (!flags[1]) return flags[0] != 0;
  // The lowest rank with the first kind of fault words the message; all throw it.
  const int culprit = world - 1 - static_cast<int>(flags[1] % world);
  throw CollectiveError(broadcast_text(
      rank == culprit ? fault_message(setup, checkpoints, outcome.fault, at) : std::string(), culprit, setup.comm));
}

}  // namespace cifar
