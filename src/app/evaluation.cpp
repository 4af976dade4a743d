// Test loss and accuracy (after an epoch, or every --eval-every steps). Each rank evaluates a contiguous slice of the test set
// (no padding, unlike training: every image counts once) and one MPI_Allreduce sums the slices.
#include <spdlog/spdlog.h>

#include "cifar_mpi/util/clock.hpp"
#include "cifar_mpi/util/mpi_check.hpp"
#include "training_run.hpp"

namespace cifar {

std::pair<double, double> evaluate(TrainingRun& run) {
  const CifarSet& test = run.data.test;
  const size_t batch = run.batch;
  const size_t n = test.size(), begin = n * run.rank / run.world, end = n * (run.rank + 1) / run.world;
  std::vector<size_t> idx;
  std::vector<int32_t> labels(batch);
  double sums[2] = {0, 0};  // loss * count, correct
  for (size_t i = begin; i < end; i += batch) {
    const size_t b = std::min(batch, end - i);
    idx.resize(b);
    for (size_t k = 0; k < b; ++k) idx[k] = i + k;
    Network& net = run.nets.get(b);
    gather_batch(test, idx, net.input(), labels.data());
    const LossResult r = net.forward(run.stream, labels.data());
    sums[0] += static_cast<double>(r.loss) * static_cast<double>(b);
    sums[1] += static_cast<double>(r.correct);
  }
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, run.comm));
  return {sums[0] / static_cast<double>(n), sums[1] / static_cast<double>(n)};
}

bool evaluation_due(const TrainingRun& run, const StepPosition& at) {
  const size_t done = at.global_step + 1, every = static_cast<size_t>(run.cfg.eval_every);
  return run.cfg.eval && every > 0 && done % every == 0 && at.step + 1 != run.steps_per_epoch &&
         done != run.planned_steps;
}

bool evaluate_and_record(TrainingRun& run, EpochTally& tally, size_t steps_done) {
  const double t0 = now_seconds();
  const auto [loss, accuracy] = evaluate(run);
  const double spent = now_seconds() - t0;
  run.eval_time += spent;
  tally.eval_time += spent;
  EvalRecord e;
  e.step = steps_done;
  e.epoch = static_cast<double>(steps_done) / static_cast<double>(run.steps_per_epoch);
  e.wall = now_seconds() - run.t_run;
  e.train_time = e.wall - run.eval_time;
  e.test_loss = loss;
  e.test_accuracy = accuracy;
  run.evals.push_back(e);
  if (run.metrics) run.metrics->add_eval(e);
  const double target = run.cfg.target_accuracy;
  const bool reached = target > 0 && accuracy >= target;
  if (run.root && run.cfg.eval_every > 0)
    spdlog::info("step {} (epoch {:.2f}): test accuracy {:.2f}%, {:.1f} s ({:.1f} s without evaluation)", steps_done,
                 e.epoch, 100 * accuracy, e.wall, e.train_time);
  if (run.root && reached)
    spdlog::info("target {:.2f}% reached at step {} (epoch {:.2f}): {:.2f} s from the start of training, {:.2f} s "
                 "without evaluation",
                 100 * target, steps_done, e.epoch, e.wall, e.train_time);
  return reached;
}

}  // namespace cifar
