// Time to a target accuracy: the first evaluation that reaches it. Its wall time counts from the
// start of training with the evaluations made so far (what a user waits), its train_time without
// them (what the training itself took; evaluating more often costs wall time, not train time).
#include <limits>

#include "cifar_mpi/metrics/step_record.hpp"

namespace cifar {

TargetSummary summarize_target(const std::vector<EvalRecord>& evals, double target) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  TargetSummary t{target, false, nan, nan, nan, -1};
  if (target <= 0) return t;
  for (const EvalRecord& e : evals) {
    if (e.test_accuracy >= target) {
      t.reached = true;
      t.time = e.wall;
      t.train_time = e.train_time;
      t.epochs = e.epoch;
      t.steps = static_cast<long long>(e.step);
      break;
    }
  }
  return t;
}

}  // namespace cifar
