// Test loss and accuracy (after an epoch, or every --eval-every steps). Each rank evaluates a contiguous slice of the test set
// (no padding, unlike training: every image counts once) and one MPI_Allreduce sums the slices.
#include <spdlog/spdlog.h>

#include "cifar_mpi/util/clock.hpp"
#include "cifar_mpi/util/mpi_check.hpp"
#include "training_run.hpp"

namespace cifar {

std::pair<double, double> evaluate(const RunSetup& setup, ModelState& model) {
  const CifarSet& test = setup.data.test;
  const size_t batch = setup.batch;
  const size_t n = test.size(), begin = n * setup.rank / setup.world, end = n * (setup.rank + 1) / setup.world;
  std::vector<size_t> idx;
  std::vector<int32_t> labels(batch);
  double sums[2] = {0, 0};  // loss * count, correct
  for (size_t i = begin; i < end; i += batch) {
    const size_t b = std::min(batch, end - i);
    idx.resize(b);
    for (size_t k = 0; k < b; ++k) idx[k] = i + k;
    Network& net = model.nets.get(b);
    gather_batch(test, idx, net.input(), labels.data());
    const LossResult r = net.forward(model.stream, labels.data());
    sums[0] += static_cast<double>(r.loss) * static_cast<double>(b);
    sums[1] += static_cast<double>(r.correct);
  }
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, setup.comm));
  return {sums[0] / static_cast<double>(n), sums[1] / static_cast<double>(n)};
}

bool evaluation_due(const RunSetup& setup, const StepPosition& at) {
  const size_t done = at.global_step + 1, every = static_cast<size_t>(setup.cfg.eval_every);
  return setup.cfg.eval && every > 0 && done % every == 0 && at.step + 1 != setup.steps_per_epoch &&
         done != setup.planned_steps;
}

bool evaluate_and_record(TrainingRun& run, EpochTally& tally, size_t steps_done) {
  const RunSetup& setup = run.setup;
  RunProgress& progress = run.progress;
  const double t0 = now_seconds();
  const auto [loss, accuracy] = evaluate(run.setup, run.model);
  const double spent = now_seconds() - t0;
  progress.eval_time += spent;
  tally.eval_time += spent;
  EvalRecord e;
  e.step = steps_done;
  e.epoch = static_cast<double>(steps_done) / static_cast<double>(setup.steps_per_epoch);
  e.wall = now_seconds() - progress.t_run;
  e.train_time = e.wall - progress.eval_time;
  e.test_loss = loss;
  e.test_accuracy = accuracy;
  progress.evals.push_back(e);
  if (run.metrics) run.metrics->add_eval(e);
  const double target = setup.cfg.target_accuracy;
  const bool reached = target > 0 && accuracy >= target;
  if (setup.root && setup.cfg.eval_every > 0)
    spdlog::info("step {} (epoch {:.2f}): test accuracy {:.2f}%, {:.1f} s ({:.1f} s without evaluation)", steps_done,
                 e.epoch, 100 * accuracy, e.wall, e.train_time);
  if (setup.root && reached)
    spdlog::info("target {:.2f}% reached at step {} (epoch {:.2f}): {:.2f} s from the start of training, {:.2f} s "
                 "without evaluation",
                 100 * target, steps_done, e.epoch, e.wall, e.train_time);
  return reached;
}

}  // namespace cifar
