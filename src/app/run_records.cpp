// What the run reports, off the hot path: a step's record goes into preallocated arrays and the
// epoch's tally (rank 0 prints a progress line every --log-every steps); an epoch's record goes
// to the log and, gathered from every rank, to the metrics file, which rank 0 rewrites whole;
// the run's outputs (trace, metrics, weights) are written at the end.
#include <spdlog/spdlog.h>

#include <cmath>
#include <limits>

#include "cifar_mpi/model/weights_io.hpp"
#include "cifar_mpi/util/clock.hpp"
#include "cifar_mpi/util/mpi_check.hpp"
#include "training_run.hpp"

namespace cifar {

namespace {

std::string format_duration(double seconds) {
  const long s = std::lround(std::max(0.0, seconds));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  return buf;
}

// Rank 0: "epoch E step S/N | loss | img/s | ETA", the throughput of all ranks so far.
void log_progress(const TrainingRun& run, const RunResult& result, float loss, const StepPosition& at) {
  const double elapsed = now_seconds() - run.progress.t_run;
  const double ips = static_cast<double>(result.images_per_rank) * run.setup.world / elapsed;
  const double eta = elapsed / static_cast<double>(at.global_step + 1) *
                     static_cast<double>(run.setup.planned_steps - at.global_step - 1);
  spdlog::info("epoch {} step {:>4}/{} | loss {:.4f} | {:>7.0f} img/s | ETA {}", at.epoch + 1, at.step + 1,
               run.setup.steps_per_epoch, loss, ips, format_duration(eta));
}

}  // namespace

void record_step(const TrainingRun& run, RunResult& result, EpochTally& tally, const StepOutcome& outcome,
                 const StepPosition& at) {
  result.steps.push_back(outcome.record);
  result.images_per_rank += outcome.images;
  result.images_trained += outcome.trained;
  tally.images += outcome.images;
  tally.loss_sum += outcome.record.loss;
  ++tally.steps;
  const size_t done = at.step + 1;
  const RunSetup& setup = run.setup;
  if (setup.root && (done % static_cast<size_t>(setup.cfg.log_every) == 0 || done == setup.steps_per_epoch))
    log_progress(run, result, outcome.record.loss, at);
}

bool record_epoch(TrainingRun& run, RunResult& result, EpochTally& tally, int epoch, bool stopped, size_t steps_done) {
  const RunSetup& setup = run.setup;
  EpochRecord er;
  er.epoch = epoch + 1;
  er.steps = tally.steps;
  er.wall = now_seconds() - tally.t_start - tally.eval_time;
  er.images = tally.images * static_cast<size_t>(setup.world);  // the sampler pads: every rank takes b
  double loss_mean = tally.loss_sum / static_cast<double>(std::max<size_t>(1, tally.steps));
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &loss_mean, 1, MPI_DOUBLE, MPI_SUM, setup.comm));
  // An epoch's end with no step of its own (a run resumed at its last step) has no training loss.
  er.train_loss = tally.steps ? loss_mean / setup.world : std::numeric_limits<double>::quiet_NaN();
  const bool evaluated = setup.cfg.eval && !stopped;  // not: --eval false, or a run stopped by a signal
  bool reached = false;
  if (evaluated) {
    // The step that reached the target mid-epoch was just evaluated: that evaluation is the epoch's.
    const std::vector<EvalRecord>& evals = run.progress.evals;
    if (evals.empty() || evals.back().step != steps_done) reached = evaluate_and_record(run, tally, steps_done);
    else reached = setup.cfg.target_accuracy > 0 && evals.back().test_accuracy >= setup.cfg.target_accuracy;
    er.test_loss = evals.back().test_loss;
    er.test_accuracy = evals.back().test_accuracy;
  } else
    er.test_loss = er.test_accuracy = std::numeric_limits<double>::quiet_NaN();
  if (setup.root && evaluated)
    spdlog::info("epoch {} done: train loss {:.4f}, test loss {:.4f}, test accuracy {:.2f}%, {:.2f} s", er.epoch,
                 er.train_loss, er.test_loss, 100 * er.test_accuracy, er.wall);
  else if (setup.root)
    spdlog::info("epoch {} done: train loss {:.4f}, {:.2f} s", er.epoch, er.train_loss, er.wall);
  result.epochs.push_back(er);
  if (setup.with_metrics) {  // outside the epoch's wall time; rank 0 rewrites the whole file
    auto all = gather_step_records(std::span(result.steps).last(tally.steps), setup.comm);
    if (run.metrics) {
      run.metrics->add_epoch(er, std::move(all));
      run.write_metrics();
    }
  }
  return reached;
}

void write_outputs(TrainingRun& run, RunResult& result) {
  const RunSetup& setup = run.setup;
  if (run.trace.enabled()) {
    run.trace.write(setup.cfg.trace, setup.comm);
    if (setup.root)
      spdlog::info("trace written to {} (open in https://ui.perfetto.dev or chrome://tracing)", setup.cfg.trace);
  }
  if (run.metrics) {
    run.metrics->set_complete(result.total_wall);
    run.write_metrics();
    result.metrics_path = run.metrics->path().string();
    spdlog::info("metrics written to {}", result.metrics_path);
  }
  if (setup.root && !setup.cfg.save_weights.empty()) {
    save_weights(run.model.arena, setup.cfg.save_weights);
    spdlog::info("weights saved to {}", setup.cfg.save_weights);
  }
}

}  // namespace cifar
