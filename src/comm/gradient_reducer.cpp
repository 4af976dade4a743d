#include "cifar_mpi/comm/gradient_reducer.hpp"

#include <algorithm>
#include <chrono>

#include "cifar_mpi/util/clock.hpp"
#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

GradientReducer::GradientReducer(std::span<float> grads, std::vector<Bucket> buckets, AllreduceStrategy strategy,
                                 bool overlap, MPI_Comm comm, WireDtype wire, RingLayout layout, int host_color)
    : GradientReducer(grads, buckets, std::vector<AllreduceStrategy>(std::max<size_t>(1, buckets.size()), strategy),
                      overlap, comm, wire, layout, host_color) {}

GradientReducer::GradientReducer(std::span<float> grads, std::vector<Bucket> buckets,
                                 std::vector<AllreduceStrategy> bucket_strategies, bool overlap, MPI_Comm comm,
                                 WireDtype wire, RingLayout layout, int host_color)
    : grads_(grads), buckets_(std::move(buckets)), overlap_(overlap), wire_(wire) {
  MPI_CHECK(MPI_Comm_size(comm, &world_size_));
  if (bucket_strategies.empty() || (bucket_strategies.size() != buckets_.size() && !buckets_.empty()))
    throw Error("gradient reducer: " + std::to_string(bucket_strategies.size()) + " strategies for " +
                std::to_string(buckets_.size()) + " buckets");
  // One all-reduce per distinct strategy, made in the order of first use: the same on every rank
  // (make_allreduce is collective).
  for (AllreduceStrategy s : bucket_strategies) {
    auto it = std::find_if(chosen_.begin(), chosen_.end(), [s](const ChosenAllreduce& c) { return c.row->strategy == s; });
    if (it == chosen_.end()) it = chosen_.insert(it, make_allreduce(s, wire, layout, comm, host_color));
    bucket_algo_.push_back(static_cast<size_t>(it - chosen_.begin()));
  }
  size_t largest = 0;
  for (const auto& b : buckets_) largest = std::max(largest, b.count);
  size_t scratch = 0;
  for (const auto& c : chosen_) scratch = std::max(scratch, c.algo->scratch_floats(largest));
  scratch_.resize(scratch);
  timings_.resize(buckets_.size());
  if (overlap_) {
    int provided = MPI_THREAD_SINGLE;
    MPI_CHECK(MPI_Query_thread(&provided));
    if (provided < MPI_THREAD_SERIALIZED)
      throw Error("--overlap on needs MPI_THREAD_SERIALIZED, but the MPI library provides level " +
                  std::to_string(provided));
    thread_ = std::thread([this] { comm_thread_loop(); });
  }
}

GradientReducer::~GradientReducer() {
  if (thread_.joinable()) {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
}

void GradientReducer::reduce_bucket(size_t k) {
  const Bucket& b = buckets_[k];
  float* data = grads_.data() + b.offset;
  if (k == 0 && watch_ && world_size_ > 1)  // before the clock: not comm time
    arrival_ = watch_->arrive(/*idle_core=*/!overlap_ || backward_done_.load(std::memory_order_acquire));
  timings_[k].start = now_seconds();
  if (world_size_ > 1) {
    // With overlap, the communication thread polls and sleeps instead of spinning inside MPI:
    // while the bytes are on the wire (the kernel moves them), its core computes backward. See
    // kPollInterval in the header.
    Allreduce& algo = *chosen_[bucket_algo_[k]].algo;
    algo.start(data, b.count, scratch_.data());
    if (overlap_) {
      // The same started form on every rank whatever its timing (MPI's is fixed by the first
      // progress()): only how this rank waits for it changes once its backward is over.
      while (!algo.progress()) {
        if (backward_done_.load(std::memory_order_acquire)) {
          algo.wait();
          break;
        }
        std::this_thread::sleep_for(kPollInterval);
      }
    } else {
      algo.wait();
    }
    const float inv_n = 1.0f / static_cast<float>(world_size_);
    for (size_t i = 0; i < b.count; ++i) data[i] *= inv_n;
  }
  timings_[k].end = now_seconds();
}

bool GradientReducer::hierarchical() const {
  return std::any_of(chosen_.begin(), chosen_.end(), [](const ChosenAllreduce& c) { return c.row->hierarchical; });
}

std::string GradientReducer::describe() const {
  if (chosen_.size() == 1) return chosen_.front().description;
  std::string s;
  for (size_t a = 0; a < chosen_.size(); ++a) {
    const auto uses = std::count(bucket_algo_.begin(), bucket_algo_.end(), a);
    s += (s.empty() ? "" : ", ") + chosen_[a].description + " for " + std::to_string(uses) + " bucket(s)";
  }
  return s;
}

void GradientReducer::comm_thread_loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || done_ < ready_; });
    if (stop_) return;
    const size_t k = done_;
    lock.unlock();
    reduce_bucket(k);  // an MPI error here ends the process (see main's terminate handler)
    lock.lock();
    ++done_;
    cv_.notify_all();
  }
}

void GradientReducer::on_grads_ready(size_t ready) {
  if (!overlap_) return;
  size_t complete = 0;
  while (complete < buckets_.size() && buckets_[complete].offset + buckets_[complete].count <= ready) ++complete;
  {
    std::lock_guard lock(mutex_);
    if (complete <= ready_) return;
    ready_ = complete;
  }
  cv_.notify_all();
}

void GradientReducer::finish_step() {
  const double t0 = now_seconds();
  StallWatch::Phase watched(watch_, "the gradient all-reduce");
  if (overlap_) {
    std::unique_lock lock(mutex_);
    ready_ = buckets_.size();
    backward_done_.store(true, std::memory_order_release);
    cv_.notify_all();
    cv_.wait(lock, [&] { return done_ == buckets_.size(); });
    ready_ = done_ = 0;
    backward_done_.store(false, std::memory_order_release);
  } else {
    for (size_t k = 0; k < buckets_.size(); ++k) reduce_bucket(k);
  }
  stats_ = StepCommStats{};
  stats_.wait = now_seconds() - t0;
  if (!buckets_.empty()) {
    stats_.first_start = timings_.front().start;
    stats_.last_end = timings_.back().end;
  }
  stats_.last_rank = arrival_.last_rank;
  stats_.skew = arrival_.skew;
  arrival_ = Arrival{};
  stats_.calls = world_size_ > 1 ? buckets_.size() : 0;
  if (world_size_ > 1)
    for (const auto& b : buckets_) stats_.bytes += b.count * wire_bytes(wire_);
}

}  // namespace cifar
