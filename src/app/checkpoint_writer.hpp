#pragma once
// Checkpoints written beside the training loop. Between two steps the loop hands the writer a
// snapshot (a copy of the weights and momentum into buffers allocated once, and the position);
// the writer's thread writes it to a temporary file with its checksums and renames it over the
// checkpoint (save_checkpoint), while the next steps run. A 2.5 MB file costs the step the copy
// (about a millisecond), not the disk.
// The sampler and the learning rate need no snapshot: both are pure functions of the position.
// A write still going when the next snapshot is due is waited for (the step pays the rest of it),
// so at most one write is in flight and the newest complete checkpoint is never older than two.
// A failed write is reported by the next call on the training thread (snapshot, wait).
// With a metrics file, the snapshot holds a copy of it too (the steps up to the checkpoint), which
// the thread writes just before the checkpoint: whenever a kill comes, the metrics file reaches at
// least as far as the newest checkpoint, so a restart's replayed steps join it without a gap.
// The training thread writes the metrics file itself only after wait() (one writer per file).
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cifar_mpi/app/checkpoint.hpp"
#include "cifar_mpi/metrics/metrics_file.hpp"
#include "cifar_mpi/model/param_arena.hpp"

namespace cifar {

class CheckpointWriter {
 public:
  // identity and reduction_plan: what every checkpoint of this run records (fixed for the run).
  CheckpointWriter(std::filesystem::path path, const ParamArena& arena,
                   std::vector<std::pair<std::string, std::string>> identity, std::string reduction_plan);
  // Finishes the write in flight (its error is logged: a destructor cannot throw) and stops the thread.
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  // Copies weights and momentum, hands them to the writer thread and returns.
  // metrics: the run's metrics file to write before the checkpoint (copied; nullptr: none).
  // extras: state beyond weights and momentum (PowerSGD's Q and error buffers, local SGD's), copied.
  void snapshot(const ParamArena& arena, std::span<const float> momentum, const CheckpointPosition& pos,
                const MetricsFile* metrics = nullptr, const CheckpointExtras& extras = {});
  // Waits until the last snapshot is on disk; throws the error of a failed write (cifar::Error).
  void wait();

  // Seconds the training thread spent on checkpoints (copies and waits), and how many were written.
  double training_thread_seconds() const { return training_seconds_; }
  size_t written() const;

 private:
  void run();
  void throw_failure();  // with the lock held

  const std::filesystem::path path_;
  const std::vector<std::pair<std::string, std::string>> identity_;
  const std::string plan_;
  ParamArena weights_;          // the snapshot's weights (specs and buffer copied once)
  std::vector<float> momentum_;
  CheckpointPosition pos_;
  CheckpointExtras extras_;  // assigned per snapshot: the inner vectors keep their capacity
  std::optional<MetricsFile> metrics_;  // the copy to write (its vectors keep their capacity)
  bool with_metrics_ = false;
  mutable std::mutex m_;
  std::condition_variable cv_;
  bool pending_ = false, stop_ = false;
  std::string failure_;  // the last failed write's message, until reported
  size_t written_ = 0;
  double training_seconds_ = 0;
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace cifar
