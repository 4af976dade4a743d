#pragma once
// The training run: data, model, optimizer and gradient reducer wired into the step loop
//   gather batch -> forward + backward (buckets reduced as they complete) -> wait -> SGD update
// with per-step timings recorded into preallocated arrays (never logged from the hot path).
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cifar_mpi/app/config.hpp"

namespace cifar {

// One rank's timings of one step, in seconds. Definitions:
//   t_data   gathering and normalising the batch
//   t_comp   forward + backward (with overlap, includes the moments spent handing buckets over)
//   t_comm   wall time from the first bucket reduction's start to the last one's end
//   t_wait   the part of t_comm not hidden behind compute: what the step actually lost
//   t_update the SGD update
struct StepRecord {
  double t_data = 0, t_comp = 0, t_comm = 0, t_wait = 0, t_update = 0;
  double loss = 0;
  uint32_t comm_calls = 0;
  uint64_t comm_bytes = 0;
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

struct RunResult {
  std::vector<EpochRecord> epochs;
  std::vector<StepRecord> steps;  // this rank's
  double total_wall = 0;
  size_t images_per_rank = 0;
  bool stopped = false;      // a stop signal ended the run early (a checkpoint was written)
  std::string metrics_path;  // rank 0: the HDF5 metrics file written ("" if none)
};

// Numerical faults: a NaN/Inf in a rank's loss or local gradients, or in the weights after the
// update, ends the run at that step on every rank with CollectiveError naming the step, the rank
// and the tensor ("loss" or a state_dict key); nothing of that step is written (the last
// checkpoint, the metrics file of the finished epochs with complete = 0, no --save-weights file).
//
// Collective. With cfg.metrics set (on rank 0), rank 0 checks that path before loading anything
// and rewrites the HDF5 metrics file after every epoch (see metrics/metrics_file.hpp); an empty
// cfg.metrics writes none (src/main.cpp fills in the default path for the program).
RunResult run_training(const Config& cfg, MPI_Comm comm);

}  // namespace cifar
