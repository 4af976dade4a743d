#pragma once
// The training run: data, model, optimizer and gradient reducer wired into the step loop
//   gather batch -> forward + backward (buckets reduced as they complete) -> wait -> SGD update
// with per-step timings recorded into preallocated arrays (never logged from the hot path).
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cifar_mpi/app/config.hpp"
#include "cifar_mpi/metrics/step_record.hpp"

namespace cifar {

struct RunResult {
  std::vector<EpochRecord> epochs;
  std::vector<StepRecord> steps;  // this rank's
  double total_wall = 0;
  size_t images_per_rank = 0;
  size_t images_trained = 0;  // by this rank itself (--balance dynamic: what it drew; else images_per_rank)
  bool stopped = false;      // a stop signal ended the run early (a checkpoint was written)
  TargetSummary target;      // --target-accuracy: whether and when it was reached
  std::string metrics_path;  // rank 0: the HDF5 metrics file written ("" if none)
  // Rank 0: checkpoints written during the run, and the seconds the training thread spent on them
  // (the snapshots' copies and any wait for the writer thread; the disk is the writer's).
  size_t checkpoints_written = 0;
  double checkpoint_seconds = 0;
  std::string overlap_trial;  // --overlap's trial verdict as logged ("" without one)
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
