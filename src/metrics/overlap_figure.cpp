// What overlap did to the step (overlap_figure.hpp).
#include "cifar_mpi/metrics/overlap_figure.hpp"

#include <algorithm>
#include <limits>

namespace cifar {

namespace {

// Per-step means over a set of steps, each step's value taken from its slowest rank (t_comm:
// the mean over ranks, the all-reduce being the same operation on every rank).
struct StepMeans {
  size_t n = 0;
  double step = 0, comp = 0, comm = 0, wait = 0, other = 0, progress = 0;
  void add(std::span<const StepRecord> ranks) {
    double step_max = 0, comp_max = 0, wait_max = 0, other_max = 0, progress_max = 0, comm_sum = 0;
    for (const StepRecord& r : ranks) {
      step_max = std::max(step_max, r.t_data + r.t_comp + r.t_wait + r.t_update);
      comp_max = std::max(comp_max, r.t_comp);
      wait_max = std::max(wait_max, r.t_wait);
      other_max = std::max(other_max, r.t_data + r.t_update);
      progress_max = std::max(progress_max, r.t_progress);
      comm_sum += r.t_comm;
    }
    ++n;
    step += step_max, comp += comp_max, wait += wait_max, other += other_max, progress += progress_max;
    comm += comm_sum / static_cast<double>(ranks.size());
  }
  void finish() {
    const double d = n ? static_cast<double>(n) : std::numeric_limits<double>::quiet_NaN();
    step /= d, comp /= d, comm /= d, wait /= d, other /= d, progress /= d;
  }
};

}  // namespace

OverlapFigure overlap_figure(std::span<const StepRecord> steps_by_rank, int world_size, bool overlap) {
  const size_t world = static_cast<size_t>(std::max(1, world_size));
  const size_t steps = steps_by_rank.size() / world;
  StepMeans on, ref;
  for (size_t s = kOverlapFigureFirstStep; s < steps; ++s) {
    const auto ranks = steps_by_rank.subspan(s * world, world);
    const bool overlapped = overlap && ranks.front().overlapped;
    (overlapped ? on : ref).add(ranks);
    if (!overlap) on.add(ranks);
  }
  on.finish();
  ref.finish();
  OverlapFigure f;
  f.steps = on.n, f.reference_steps = ref.n;
  f.step = on.step, f.comp = on.comp, f.comm = on.comm, f.wait = on.wait, f.progress = on.progress;
  f.comp_ref = ref.comp, f.comm_ref = ref.comm, f.other_ref = ref.other;
  f.no_overlap_step = ref.other + ref.comp + ref.comm;
  if (!overlap) return f;  // nothing overlapped: saving, hidden, realised, inflation 0
  f.saving = f.no_overlap_step - f.step;
  const double gained = std::max(0.0, f.saving);
  f.hidden = f.comm_ref > 0 ? std::min(1.0, gained / f.comm_ref) : 0;
  const double possible = std::min(f.comp_ref, f.comm_ref);
  f.realised = possible > 0 ? std::min(1.0, gained / possible) : 0;
  f.comp_inflation = f.comp_ref > 0 ? f.comp / f.comp_ref - 1 : 0;
  if (ref.n == 0 || on.n == 0) {  // nothing to compare with
    const double nan = std::numeric_limits<double>::quiet_NaN();
    f.saving = f.hidden = f.realised = f.comp_inflation = nan;
  }
  return f;
}

}  // namespace cifar
