#pragma once
// The pieces of run_training (src/app/trainer.cpp), one idea per file:
//   run_setup.cpp         the set-up that stays fixed: options, ranks, batch, data, sampler, lr schedule
//   training_run.cpp      the state the steps change: the model and its reducer, checkpoints, buffers
//   train_step.cpp        one step on this rank: batch, forward + backward, reduction, update
//   step_agreement.cpp    the one collective per step: numerical faults and stop signals
//   run_checkpoints.cpp   when a checkpoint is written, and what position it holds
//   checkpoint_writer.cpp the thread that writes checkpoints while the steps go on
//   evaluation.cpp        test loss and accuracy
//   run_records.cpp       what the run reports: progress lines, epoch records, metrics, outputs
// Private to src/app: the tests and the program see run_training alone.
#include <mpi.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cifar_mpi/app/checkpoint.hpp"
#include "cifar_mpi/app/overlap_trial.hpp"
#include "cifar_mpi/app/config.hpp"
#include "cifar_mpi/app/trainer.hpp"
#include "cifar_mpi/comm/gradient_reducer.hpp"
#include "cifar_mpi/comm/shared_counter.hpp"
#include "cifar_mpi/metrics/metrics_file.hpp"
#include "cifar_mpi/metrics/trace_recorder.hpp"
#include "cifar_mpi/model/network.hpp"
#include "cifar_mpi/optim/sgd_momentum.hpp"
#include "checkpoint_writer.hpp"
#include "reduction_plan.hpp"
#include "run_setup.hpp"
#include "send_less.hpp"

namespace cifar {

// Networks share the weights; one is built per batch size (full batches, the epoch's final
// partial batch, the test set's remainder).
class NetworkCache {
 public:
  // options: the convolutions' algorithms and compute type, the same on every rank.
  NetworkCache(const ModelSpec& model, const dnnl::engine& eng, ParamArena& arena, NetworkOptions options)
      : model_(model), eng_(eng), arena_(arena), options_(std::move(options)) {}
  Network& get(size_t batch) {
    auto& net = nets_[batch];
    if (!net) net = std::make_unique<Network>(model_, eng_, arena_, batch, options_);
    return *net;
  }
  const NetworkOptions& options() const { return options_; }

 private:
  const ModelSpec& model_;
  dnnl::engine eng_;
  ParamArena& arena_;
  NetworkOptions options_;
  std::map<size_t, std::unique_ptr<Network>> nets_;
};

// The replica and what updates it: the weights, the optimizer's momentum, the reducer and its
// plan, --compress / --local-sgd, the --balance dynamic counter; the engine and stream the
// networks run on. A step changes them; they are built in the order they are declared.
struct ModelState {
  explicit ModelState(const RunSetup& setup);

  dnnl::engine eng;
  dnnl::stream stream;
  ParamArena arena;
  NetworkCache nets;
  SgdMomentum sgd;
  const ReductionPlan plan;  // buckets and per-bucket all-reduce (the checkpoint's when resuming)
  GradientReducer reducer;
  SendLess send_less;  // --compress / --local-sgd: takes the reducer's place from its start step
  std::unique_ptr<SharedCounter> counter;  // --balance dynamic: the host's chunk tickets (else none)
  uint64_t ticket_base = 0;                // the counter at this step's start, the same on every rank
};

// Buffers a step reuses, allocated once.
struct StepScratch {
  StepScratch(const RunSetup& setup, ModelState& model);

  std::vector<int32_t> labels;    // the batch's
  std::vector<float> grad_accum;  // a step's earlier passes' gradients, summed (passes, or --balance dynamic)
  std::vector<double> layer_forward, layer_backward;  // one step's per-layer times (metrics)
};

// When the run last wrote a checkpoint, whether one is due, and the writer.
struct CheckpointState {
  std::unique_ptr<CheckpointWriter> writer;  // rank 0: writes checkpoints beside the training loop
  long long last_step = -1;     // global step of the last checkpoint this run wrote
  double last_time = 0;         // rank 0's clock then (or the run's start): --checkpoint-every TIME
  bool due = false;             // the step agreement's: rank 0's clock says a timed checkpoint is due
  double metrics_seconds = 0;   // seconds gathering the step records at checkpoints
};

// The run's clock and its evaluations so far.
struct RunProgress {
  double t_run = 0;               // when the first step started
  std::vector<EvalRecord> evals;  // every evaluation so far (the same on every rank)
  double eval_time = 0;           // seconds spent evaluating so far
};

// A run: its fixed set-up, and the state its steps change, each part built in the order declared
// (the order of the set-up's collectives and checks: see make_run_setup).
struct TrainingRun {
  TrainingRun(const Config& cfg, MPI_Comm comm);

  // Rank 0, unless --metrics is empty. Declared before the set-up, which opens it among its first
  // checks (the path fails at once, not after the data and the model are loaded).
  std::optional<MetricsFile> metrics;
  const RunSetup setup;
  ModelState model;
  const CheckpointPosition start;  // where this run begins (a checkpoint's position when resuming)
  CheckpointState checkpoints;
  OverlapTrial overlap;  // --overlap: which steps run overlapped, and the trial that decides (overlap_trial.hpp)
  StepScratch scratch;
  RunProgress progress;
  TraceRecorder trace;

  // Lines the ranks' clocks up for the trace and starts the run's clock.
  void start_clock();
  // A failed write names the file (the HDF5 layer names the dataset and the system's reason).
  void write_metrics();
};

// Where a step is in the run (0-based).
struct StepPosition {
  int epoch;
  size_t step;         // in the epoch
  size_t global_step;  // in the whole run
};

// One step on this rank, before the ranks agree on it.
struct StepOutcome {
  StepRecord record;
  size_t images = 0;   // this rank's batch
  size_t trained = 0;  // the images this rank trained itself (--balance dynamic: what it drew)
  std::string fault;   // the first numerical fault on this rank ("" if none)
  int fault_kind = 0;  // 2: this rank's loss or gradients; 1: the weights after the update; 0: none
};

// A running epoch's totals on this rank.
struct EpochTally {
  double t_start = 0;
  double eval_time = 0;  // evaluations within the epoch (--eval-every), not part of its wall time
  double loss_sum = 0;
  size_t steps = 0, images = 0;
};

// train_step.cpp: gathers the batch, runs forward + backward with the gradients reduced as they
// are ready, waits for the reduction, updates the weights; records the timeline into the trace.
StepOutcome train_step(TrainingRun& run, const std::vector<size_t>& order, const StepPosition& at);

// step_agreement.cpp: collective. Throws CollectiveError if any rank has a fault; returns true if a
// stop signal reached any rank (every rank then stops after this same step).
// It also carries --overlap's trial verdict from rank 0 to every rank.
bool agree_on_step(const RunSetup& setup, CheckpointState& checkpoints, OverlapTrial& overlap,
                   const StepOutcome& outcome, const StepPosition& at);

// run_checkpoints.cpp: the checkpoint after a step (on a stop, or every --checkpoint-every steps),
// and the one at the end of a run that was not stopped.
// A periodic checkpoint also writes the metrics file with the running epoch's steps so far (collective).
void checkpoint_after_step(TrainingRun& run, const RunResult& result, const EpochTally& tally, const StepPosition& at,
                           bool stopped);
void checkpoint_at_end(TrainingRun& run, size_t global_step);

// evaluation.cpp: collective. Test loss and accuracy over the whole test set.
std::pair<double, double> evaluate(const RunSetup& setup, ModelState& model);
// Collective. Evaluates after `steps_done` steps, records it (run.progress, the metrics file, the
// log) and returns whether it reached --target-accuracy. Its time goes to run.progress and
// tally.eval_time.
bool evaluate_and_record(TrainingRun& run, EpochTally& tally, size_t steps_done);
// An --eval-every evaluation is due after this step (the epoch's last step is evaluated by record_epoch).
bool evaluation_due(const RunSetup& setup, const StepPosition& at);

// run_records.cpp: a step into the result and the epoch's tally (and the progress line); an
// epoch's record (evaluated unless stopped) into the result and the metrics file; the outputs at
// the end (trace, metrics, weights).
void record_step(const TrainingRun& run, RunResult& result, EpochTally& tally, const StepOutcome& outcome,
                 const StepPosition& at);
// Returns whether its evaluation reached --target-accuracy (an evaluation already made after
// `steps_done` steps is not repeated).
bool record_epoch(TrainingRun& run, RunResult& result, EpochTally& tally, int epoch, bool stopped, size_t steps_done);
void write_outputs(TrainingRun& run, RunResult& result);

}  // namespace cifar
