#pragma once
// What the training loop records: one rank's step, and one epoch over all ranks. Filled in by
// app/train_step.cpp and app/run_records.cpp, written by metrics_file.hpp, gathered across ranks by gather_step_records.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace cifar {

// One rank's timings of one step, in seconds. Definitions:
//   t_data   gathering and normalising the batch
//   t_comp   forward + backward (with overlap, includes t_progress)
//   t_comm   wall time from the first bucket reduction's start to the last one's end
//   t_wait   the time the step waited for communication after backward
//   t_update the SGD update
//   t_progress with overlap: the part of t_comp spent advancing the reductions between layers
//   overlapped 1 if the reductions ran beside backward; 0 with --no-overlap, and on the steps a
//            run with --overlap holds it back to measure the step without it (overlap_figure.hpp)
//   last_rank the rank whose arrival this rank waited for last at the step's first gradient
//            reduction (this rank's own number if everyone was there before it); -1 with one rank
//   skew     how long this rank waited for that rank (0 for the rank that arrived last)
struct StepRecord {
  double t_data = 0, t_comp = 0, t_comm = 0, t_wait = 0, t_update = 0;
  double loss = 0;
  uint32_t comm_calls = 0;
  uint64_t comm_bytes = 0;
  int32_t last_rank = -1;
  double skew = 0;
  double t_progress = 0;
  uint8_t overlapped = 0;
};

struct EpochRecord {
  int epoch = 0;
  size_t steps = 0;
  double train_loss = 0;  // mean over steps and ranks
  double test_loss = 0, test_accuracy = 0;  // NaN when not evaluated (--eval false, or the
                                            // partial epoch of a run stopped by a signal)
  double wall = 0;        // seconds, training only (excludes evaluation)
  size_t images = 0;      // training images of the epoch, all ranks
};

// One evaluation of the test set (every one: at --eval-every steps and at each epoch's end).
// Times are from the start of training: `wall` with the evaluations so far, `train_time` without.
struct EvalRecord {
  size_t step = 0;        // optimizer steps done, counted from the start of the whole run
  double epoch = 0;       // fractional epochs done: step / steps_per_epoch
  double wall = 0, train_time = 0;
  double test_loss = 0, test_accuracy = 0;
};

// Time to a target accuracy, from a run's evaluations: the first one that reaches it.
struct TargetSummary {
  double target = 0;  // 0: no target
  bool reached = false;
  double time = 0, train_time = 0, epochs = 0;  // NaN when not reached
  long long steps = -1;                         // -1 when not reached
};

TargetSummary summarize_target(const std::vector<EvalRecord>& evals, double target);

}  // namespace cifar
