#pragma once
// The part of a run that is fixed once it is set up: the options, the ranks, the batch, the data,
// the sampler's geometry and the learning-rate schedule. TrainingRun holds it as `const RunSetup`,
// so a function that takes `const RunSetup&` alone reads the run and changes none of it.
// Private to src/app, like training_run.hpp.
#include <mpi.h>

#include <optional>
#include <string>
#include <vector>

#include "cifar_mpi/app/config.hpp"
#include "cifar_mpi/comm/link_model.hpp"
#include "cifar_mpi/data/cifar_dataset.hpp"
#include "cifar_mpi/data/distributed_sampler.hpp"
#include "cifar_mpi/metrics/metrics_file.hpp"
#include "cifar_mpi/optim/lr_schedule.hpp"

namespace cifar {

// The training and test sets, loaded on every rank and checked to have the same sizes on all
// (--data-dir may differ between ranks: node-local copies).
struct TrainingData {
  CifarSet train, test;
  TrainingData(const Config& cfg, MPI_Comm comm, bool root);
};

struct RunSetup {
  const Config& cfg;
  MPI_Comm comm;
  int rank, world;
  bool root;
  std::string start_time;  // ISO-8601, for the metrics file
  size_t batch;            // per rank
  size_t pass;             // images per forward/backward pass: --micro-batch, or the batch
  bool with_metrics;       // rank 0 has a metrics file (the same on every rank)
  std::optional<LinkModel> link_file;  // --link-model, as rank 0 read it (none: probe the link)
  RunEnvironment env;      // gathered only with a metrics file
  TrainingData data;
  std::string checkpoint_path;  // --checkpoint, or its default
  DistributedSampler sampler;   // this rank's shard (--balance static)
  size_t samples;               // images a rank takes in an epoch (the sampler pads the shards alike)
  size_t steps_per_epoch, planned_steps;
  LrSchedule schedule;  // the lr of every step (a pure function of the global step)

  // --balance dynamic: the ranks draw a step's images in chunks from a shared counter.
  bool draws_chunks() const { return cfg.balance == Config::Balance::dynamic; }
};

// Collective. The set-up's steps in the order of its checks: cheap checks of the options and
// output paths first (and rank 0's metrics file opened into `metrics`, which checks its path), so
// that a mistake fails before anything slow; then the environment, the data and the sampler's
// geometry (a batch larger than a shard with --drop-last fails here, before the model is built).
RunSetup make_run_setup(const Config& cfg, MPI_Comm comm, std::optional<MetricsFile>& metrics);

// The smallest chunk --balance dynamic cuts a step into: 8 images take ~1.2 ms on one core, the
// most by which the ranks' ends of a step then differ, while passes this small still run at the
// speed of whole batches.
constexpr size_t kSmallestChunk = 8;

// The epoch's images in training order: this rank's; with --balance dynamic every rank's, step by
// step (a step's images of all ranks together, rank 0's first), since any rank may train any of them.
std::vector<size_t> epoch_order(const RunSetup& setup, int epoch);
// --balance dynamic: the chunks a step of `images` (all ranks') is drawn in.
std::vector<size_t> step_chunks(const RunSetup& setup, size_t images);

}  // namespace cifar
