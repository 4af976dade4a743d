#include "cifar_mpi/comm/gradient_reducer.hpp"

#include <algorithm>

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
}

GradientReducer::~GradientReducer() {
  poller_.reset();  // first: nothing may call advance() once the members go
}  // then each all-reduce completes what is in flight

void GradientReducer::set_background_poll(std::chrono::microseconds interval) {
  poller_.reset();
  poll_interval_ = poll_sleep_ = interval;
  if (interval.count() > 0 && overlap_ && world_size_ > 1)
    poller_ = std::make_unique<BackgroundPoller>(interval, [this] { return background_poll(); });
}

std::chrono::microseconds GradientReducer::background_poll() {
  std::unique_lock lock(mutex_, std::try_to_lock);
  if (!lock.owns_lock()) return poll_sleep_;  // the training thread is at it
  if (done_ == ready_) return std::chrono::microseconds{0};  // nothing in flight or to start
  const size_t started = started_, done = done_;
  advance();
  if (done_ == ready_) return std::chrono::microseconds{0};
  poll_sleep_ = started_ != started || done_ != done ? poll_interval_ : std::min(2 * poll_sleep_, kBackgroundPollLongest);
  return poll_sleep_;
}

void GradientReducer::start_bucket(size_t k) {
  const Bucket& b = buckets_[k];
  timings_[k].start = now_seconds();
  timings_[k].end = 0;
  started_ = k + 1;
  if (world_size_ > 1) {
    Allreduce& algo = *chosen_[bucket_algo_[k]].algo;
    algo.start(grads_.data() + b.offset, b.count, scratch_.data());
    // Overlap on: every bucket in the polled form on every rank whatever its timing (MPI's form
    // is fixed by the first call after start: MPI_Iallreduce here, then MPI_Wait after backward).
    if (overlap_ && algo.progress()) complete_bucket(k);
  } else {
    complete_bucket(k);  // nothing to exchange
  }
}

void GradientReducer::complete_bucket(size_t k) {
  const Bucket& b = buckets_[k];
  if (world_size_ > 1) {
    float* data = grads_.data() + b.offset;
    const float inv_n = 1.0f / static_cast<float>(world_size_);
    for (size_t i = 0; i < b.count; ++i) data[i] *= inv_n;
  }
  timings_[k].end = now_seconds();
  done_ = k + 1;
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

void GradientReducer::on_grads_ready(size_t ready) {
  if (!overlap_) return;
  {
    std::lock_guard lock(mutex_);
    const size_t before = ready_;
    while (ready_ < buckets_.size() && buckets_[ready_].offset + buckets_[ready_].count <= ready) ++ready_;
    if (ready_ != before) poll_sleep_ = poll_interval_;
  }
  if (poller_ && step_overlap_ && ready_ > 0) poller_->arm();
  poll();
}

void GradientReducer::poll() {
  if (!overlap_ || !step_overlap_) return;
  std::unique_lock lock(mutex_, std::try_to_lock);
  if (!lock.owns_lock() || done_ == ready_) return;  // the poller is at it, or nothing in flight or to start
  const double t0 = now_seconds();
  advance();
  progress_ += now_seconds() - t0;
}

void GradientReducer::advance() {
  for (;;) {
    if (started_ > done_) {  // one in flight
      if (!chosen_[bucket_algo_[done_]].algo->progress()) return;
      complete_bucket(done_);
    }
    if (started_ == ready_) return;
    // Every step's first reduction starts once every rank has arrived (a stall is reported, not
    // waited for inside a collective); meanwhile backward goes on.
    if (started_ == 0 && watch_ && world_size_ > 1) {
      if (!arrival_posted_) {
        watch_->post_arrival();
        arrival_posted_ = true;
      }
      if (!watch_->test_arrival()) return;
      arrival_ = watch_->finish_arrival(false);  // complete: only reads the result
    }
    start_bucket(started_);
  }
}

void GradientReducer::finish_step() {
  const double t0 = now_seconds();
  if (poller_) poller_->disarm();  // from here on the training thread alone
  std::lock_guard lock(mutex_);
  StallWatch::Phase watched(watch_, "the gradient all-reduce");
  ready_ = buckets_.size();
  if (started_ > done_) {  // overlap: the one in flight, waited on now that backward is over
    chosen_[bucket_algo_[done_]].algo->wait();
    complete_bucket(done_);
  }
  while (started_ < ready_) {
    const size_t k = started_;
    if (k == 0 && watch_ && world_size_ > 1) {  // before the clock starts: not comm time
      if (!arrival_posted_) watch_->post_arrival();
      arrival_ = watch_->finish_arrival(/*idle_core=*/true);
    }
    start_bucket(k);
    if (done_ > k) continue;  // complete already (the polled form's first test)
    chosen_[bucket_algo_[k]].algo->wait();
    complete_bucket(k);
  }
  stats_ = StepCommStats{};
  stats_.wait = now_seconds() - t0;
  if (!buckets_.empty()) {
    stats_.first_start = timings_.front().start;
    stats_.last_end = timings_.back().end;
  }
  stats_.last_rank = arrival_.last_rank;
  stats_.skew = arrival_.skew;
  stats_.progress = progress_;
  stats_.overlapped = overlap_ && step_overlap_ && world_size_ > 1;
  arrival_ = Arrival{};
  ready_ = started_ = done_ = 0;
  arrival_posted_ = false;
  progress_ = 0;
  stats_.calls = world_size_ > 1 ? buckets_.size() : 0;
  if (world_size_ > 1)
    for (const auto& b : buckets_) stats_.bytes += b.count * wire_bytes(wire_);
}

}  // namespace cifar
