#pragma once
// The HDF5 metrics file of a run (layout: docs/metrics.md). Rank 0 owns it; the other ranks'
// step records reach it through gather_step_records, once per epoch.
//
// Killed runs: the whole file is rewritten after every epoch into "<path>.tmp.<pid>" and renamed
// over <path> once complete. A run killed before its first epoch ends leaves no file under <path>;
// one killed later leaves the complete file of every finished epoch (root attribute
// complete = 0); a kill during the rewrite itself may leave the stray temporary file beside it,
// never a half-written <path>.
#include <mpi.h>

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cifar_mpi/metrics/overlap_figure.hpp"
#include "cifar_mpi/metrics/step_record.hpp"

namespace cifar {

// Where and how the run ran. Collective: every rank calls gather_run_environment; the result is
// complete on rank 0 (the other ranks get their own node's view).
struct RunEnvironment {
  int world_size = 1;
  int ranks_per_node = 1;         // ranks on rank 0's node (MPI_Comm_split_type SHARED)
  int nodes = 1;
  unsigned hardware_threads = 0;  // std::thread::hardware_concurrency() on rank 0's node
  bool oversubscribed = false;    // some node runs more ranks than it has hardware threads
  std::string hosts;              // comma-joined unique MPI_Get_processor_name of all ranks
};
RunEnvironment gather_run_environment(MPI_Comm comm);

// Collective: every rank passes its records of the same steps (the sampler pads the shards, so
// all ranks take the same number of steps). Rank 0 receives them as [step][rank], row-major:
// record (s, r) is at s * world_size + r. The other ranks receive an empty vector.
std::vector<StepRecord> gather_step_records(std::span<const StepRecord> local, MPI_Comm comm);

// The default metrics path: results/run-YYYYmmdd-HHMMSS-np<N>.h5 under the working directory,
// with -2, -3, ... appended if that name is taken. Creates results/ (Error if it cannot).
std::filesystem::path default_metrics_path(int world_size);

// The static facts of a run, written as root attributes.
// The metrics layer knows nothing of the application's Config: the trainer fills these in.
struct RunInfo {
  std::vector<std::pair<std::string, std::string>> config;  // every option, as config.KEY attributes
  std::vector<std::pair<std::string, std::string>> meta;    // --meta labels, as meta.KEY attributes
  std::string strategy = "mpi", wire_dtype = "fp32";
  double bucket_mb = 0;
  bool overlap = false, eval = true;
  int threads = 1, epochs = 1;
  long max_steps = 0;
  RunEnvironment env;
  std::string start_time;  // ISO-8601 with UTC offset
  size_t parameter_count = 0, gradient_bytes = 0, buckets = 0;
  size_t batch_per_rank = 0, steps_per_epoch = 0;
  double target_accuracy = 0;  // --target-accuracy (0: none)
  size_t start_global_step = 0;  // the global step the run began at (a resumed run: its checkpoint's)
};

// The model group: what the cost model (tools/cifar_tools/cost_model/) reads instead of constants
// of one machine. Plain names and numbers, filled in by the trainer (the metrics layer knows no
// model).
struct ModelInfo {
  std::vector<std::string> tensor_names;   // parameter tensors in arena (= backward) order
  std::vector<size_t> tensor_offsets;      // floats into the gradient arena
  std::vector<size_t> tensor_floats;
  std::vector<size_t> bucket_offsets;      // the buckets as reduced, backward order (floats)
  std::vector<size_t> bucket_floats;
  std::vector<std::string> layer_names;    // forward order
  std::vector<std::string> bucket_algorithms;  // per bucket: the all-reduce's table row
  std::string plan_source;                 // "fixed" (--bucket-mb X), "planned" (auto), "checkpoint"
  std::vector<std::string> link_algorithms;  // the link model (--allreduce auto, --bucket-mb auto)
  std::vector<double> link_alpha, link_beta;  // s, s per float32 byte
  std::vector<size_t> ready_floats;        // the timed backward --bucket-mb auto planned from
  std::vector<double> ready_time;          // s after backward began
};

// The summary group's attributes, over the epochs recorded so far. Times in seconds; per-rank
// totals are averaged over the ranks (the _max variants take the slowest rank). NaN where a
// value does not apply (compute_to_comm_ratio with no communication, accuracy without --eval).
struct MetricsSummary {
  double total_train_time = 0;      // sum of the epochs' wall times (training only)
  double total_wall = 0;            // whole run incl. evaluation (only once complete; else = train time)
  double images_per_second = 0;     // images of all ranks / total_train_time
  double comm_calls_per_epoch = 0;  // per rank
  double total_comm_time = 0, total_comm_time_max = 0;
  double total_wait_time = 0, total_wait_time_max = 0;
  double total_comp_time = 0, total_data_time = 0, total_update_time = 0;
  double avg_iteration_time = 0;    // total_train_time / steps
  double compute_to_comm_ratio = 0;
  double comm_bytes_per_rank = 0;
  double final_test_accuracy = 0, final_train_loss = 0;
  size_t steps = 0, epochs = 0, images = 0;
  // Checkpoints written in the run, and the training thread's seconds spent on them (snapshot
  // copies and waits; a writer thread does the disk): their cost per step is this / total_train_time.
  size_t checkpoints_written = 0;
  double checkpoint_seconds = 0;
  OverlapFigure overlap;  // what overlap did to the step
};

// The summary of these epochs and every rank's steps ([step][rank], as gather_step_records gives
// them): the one computation behind the metrics file's summary group and the printed summary
// (src/app/run_summary.cpp). `total_wall`: the whole run's, once complete (else the train time).
MetricsSummary summarize(std::span<const EpochRecord> epochs, std::span<const StepRecord> steps_by_rank,
                         int world_size, bool eval, bool overlap, std::optional<double> total_wall);

class MetricsFile {
 public:
  // Checks the path now, before any training: an existing file is refused unless `force`, and the
  // folder must exist and be writable. Errors are one line naming the path.
  MetricsFile(std::filesystem::path path, bool force);

  const std::filesystem::path& path() const { return path_; }
  void set_run_info(RunInfo info) { info_ = std::move(info); }
  // The model group's tensors, buckets and layers; zeroes the per-layer time sums.
  void set_model(ModelInfo model);
  // One step's per-layer seconds on rank 0, in the order of ModelInfo::layer_names. The file holds
  // their mean over the calls (model/layer_forward, model/layer_backward). No allocation.
  void add_layer_times(std::span<const double> forward_s, std::span<const double> backward_s);
  // One finished epoch: its record and every rank's steps as [step][rank] (gather_step_records).
  void add_epoch(const EpochRecord& epoch, std::vector<StepRecord> steps_by_rank);
  // The running epoch's steps so far ([step][rank]), written after the finished epochs' until
  // add_epoch replaces them: a checkpoint writes them, so that a run killed mid-epoch leaves the
  // records of every step up to its last checkpoint (tools/elastic_run.sh joins the attempts).
  void set_running_epoch(int epoch, std::vector<StepRecord> steps_by_rank) {
    running_epoch_ = epoch;
    running_steps_ = std::move(steps_by_rank);
  }
  // One evaluation (evals/ group; the time to the target in the summary group).
  void add_eval(const EvalRecord& eval) { evals_.push_back(eval); }
  // Marks the run complete with its whole wall time (the next write says complete = 1).
  void set_complete(double total_wall);
  // The run's checkpoints so far (MetricsSummary::checkpoints_written, checkpoint_seconds).
  void set_checkpoint_cost(size_t written, double seconds) {
    checkpoints_written_ = written;
    checkpoint_seconds_ = seconds;
  }
  MetricsSummary summary() const;
  // Rewrites the whole file atomically (temporary file, then rename).
  void write() const;

 private:
  std::vector<EvalRecord> evals_;
  std::filesystem::path path_;
  RunInfo info_;
  std::vector<EpochRecord> epochs_;
  std::vector<StepRecord> steps_;  // [total steps][world]
  std::vector<int> step_epoch_;    // [total steps]
  int running_epoch_ = 0;
  std::vector<StepRecord> running_steps_;  // [steps of the running epoch so far][world]
  ModelInfo model_;
  std::vector<double> layer_forward_sum_, layer_backward_sum_;
  size_t layer_steps_ = 0;
  bool complete_ = false;
  double total_wall_ = 0;
  size_t checkpoints_written_ = 0;
  double checkpoint_seconds_ = 0;
};

}  // namespace cifar
