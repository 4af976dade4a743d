#pragma once
// What overlap did to the step, measured in the run itself (docs/metrics.md, "What overlap did").
//
// A run with --overlap holds overlap back on a few steps (StepRecord::overlapped = 0; the same
// bits, only the reductions wait until backward is over). Those steps are the reference: the
// same run's compute and communication without overlap, under the same load. Over the steps
// from the third on (the first two warm up), per step the slowest rank's values:
//
//   step            mean of max over ranks (t_data + t_comp + t_wait + t_update), overlapped steps
//   comp, comm      their mean max t_comp, mean (over ranks) t_comm; wait, progress: mean max
//   comp_ref, comm_ref, other_ref   the same of the reference steps (other = t_data + t_update)
//   no_overlap_step other_ref + comp_ref + comm_ref: the step without overlap
//   saving          no_overlap_step - step (negative: overlap made the step slower)
//   hidden          max(0, saving) / comm_ref, at most 1: the share of communication overlap took
//                   off the step. A slower step can only lower it, however much of T_comm ran
//                   beside backward (T_comm - T_wait counts that, and rose as steps got slower).
//   realised        max(0, saving) / min(comp_ref, comm_ref): the share of the possible saving
//   comp_inflation  comp / comp_ref - 1: what overlap added to forward + backward
//
// Without overlap every step is a reference step: no_overlap_step = the mean of
// other + comp + comm, and saving, hidden, realised and comp_inflation are 0. With no
// reference step (a run shorter than the first held-back step) the figure is NaN.
#include <cstddef>
#include <span>

#include "cifar_mpi/metrics/step_record.hpp"

namespace cifar {

struct OverlapFigure {
  size_t steps = 0, reference_steps = 0;  // the steps counted: overlapped, held back (or all, no overlap)
  double step = 0, comp = 0, comm = 0, wait = 0, progress = 0;
  double comp_ref = 0, comm_ref = 0, other_ref = 0;
  double no_overlap_step = 0, saving = 0, hidden = 0, realised = 0, comp_inflation = 0;
};

// steps_by_rank: [step][rank] as gather_step_records gives them. overlap: the run's --overlap.
OverlapFigure overlap_figure(std::span<const StepRecord> steps_by_rank, int world_size, bool overlap);

// The steps from which the figure counts (the first ones warm up).
inline constexpr size_t kOverlapFigureFirstStep = 2;

}  // namespace cifar
