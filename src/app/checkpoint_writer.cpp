#include "checkpoint_writer.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "cifar_mpi/util/clock.hpp"
#include "cifar_mpi/util/error.hpp"

namespace cifar {

CheckpointWriter::CheckpointWriter(std::filesystem::path path, const ParamArena& arena,
                                   std::vector<std::pair<std::string, std::string>> identity,
                                   std::string reduction_plan)
    : path_(std::move(path)),
      identity_(std::move(identity)),
      plan_(std::move(reduction_plan)),
      weights_(arena),
      momentum_(arena.total_count()),
      thread_([this] { run(); }) {}

CheckpointWriter::~CheckpointWriter() {
  {
    std::unique_lock lock(m_);
    cv_.wait(lock, [this] { return !pending_; });
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (!failure_.empty()) spdlog::error("{}", failure_);
}

void CheckpointWriter::throw_failure() {
  if (failure_.empty()) return;
  const std::string msg = std::move(failure_);
  failure_.clear();
  throw Error(msg);
}

void CheckpointWriter::snapshot(const ParamArena& arena, std::span<const float> momentum,
                                const CheckpointPosition& pos, const MetricsFile* metrics,
                                const CheckpointExtras& extras) {
  const double t0 = now_seconds();
  {
    std::unique_lock lock(m_);
    cv_.wait(lock, [this] { return !pending_; });  // the previous write is done
    throw_failure();
    // Same sizes as the buffers: std::copy, no allocation.
    std::copy(arena.params().begin(), arena.params().end(), weights_.params().begin());
    std::copy(arena.buffers().begin(), arena.buffers().end(), weights_.buffers().begin());
    std::copy(momentum.begin(), momentum.end(), momentum_.begin());
    pos_ = pos;
    extras_ = extras;
    with_metrics_ = metrics != nullptr;
    if (metrics) metrics_ = *metrics;
    pending_ = true;
  }
  cv_.notify_all();
  training_seconds_ += now_seconds() - t0;
}

void CheckpointWriter::wait() {
  const double t0 = now_seconds();
  std::unique_lock lock(m_);
  cv_.wait(lock, [this] { return !pending_; });
  training_seconds_ += now_seconds() - t0;
  throw_failure();
}

size_t CheckpointWriter::written() const {
  std::lock_guard lock(m_);
  return written_;
}

void CheckpointWriter::run() {
  std::unique_lock lock(m_);
  for (;;) {
    cv_.wait(lock, [this] { return pending_ || stop_; });
    if (!pending_) return;  // stop_, nothing left to write
    // The buffers are this thread's until pending_ is cleared: the training thread waits for that
    // before it copies into them again.
    lock.unlock();
    std::string failure;
    try {
      // Metrics first: a run killed between the two renames then leaves a metrics file that
      // reaches at least as far as its checkpoint, so the steps a restart replays from that
      // checkpoint join onto it without a gap (tools/elastic_run.sh joins the attempts' files).
      if (with_metrics_) {
        try {
          metrics_->write();
        } catch (const Error& e) {
          throw Error("cannot write metrics file " + metrics_->path().string() + ": " + e.what());
        }
      }
      save_checkpoint(path_, weights_, momentum_, pos_, identity_, plan_, extras_);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    lock.lock();
    if (failure.empty()) ++written_;
    else failure_ = failure;
    pending_ = false;
    cv_.notify_all();
  }
}

}  // namespace cifar
