#include "cifar_mpi/comm/gradient_reducer.hpp"

#include <algorithm>
#include <chrono>

#include "cifar_mpi/comm/hierarchical_allreduce.hpp"
#include "cifar_mpi/comm/ring_allreduce.hpp"
#include "cifar_mpi/comm/ring_allreduce_async.hpp"
#include "cifar_mpi/util/clock.hpp"
#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

GradientReducer::GradientReducer(std::span<float> grads, std::vector<Bucket> buckets, AllreduceStrategy strategy,
                                 bool overlap, MPI_Comm comm, WireDtype wire, RingLayout layout, int host_color)
    : grads_(grads), buckets_(std::move(buckets)), strategy_(strategy), overlap_(overlap), comm_(comm), wire_(wire) {
  MPI_CHECK(MPI_Comm_size(comm_, &world_size_));
  size_t largest = 0;
  for (const auto& b : buckets_) largest = std::max(largest, b.count);
  const bool ring = strategy_ == AllreduceStrategy::ring;
  if (ring && layout == RingLayout::hosts && world_size_ > 1) {
    // Collective on every rank alike (the configuration is the same on all).
    auto hosts = std::make_unique<HostLayout>(comm_, host_color);
    if (!hosts->uniform())
      layout_note_ = "flat ring: hosts have different numbers of ranks";
    else if (hosts->hierarchical())
      hosts_ = std::move(hosts);
  }
  // The hierarchical ring's within-host phases are float32 whatever the wire type.
  if (hosts_)
    ring_scratch_.resize(HierarchicalRingAllreduce::scratch_floats(largest, *hosts_));
  else if (ring && wire_ == WireDtype::fp32)
    ring_scratch_.resize(ring_scratch_floats(largest, world_size_));
  if (wire_ != WireDtype::fp32) {
    const size_t in_transit = ring ? ring_scratch_floats(largest, world_size_) : largest;
    wire_send_.resize(in_transit);
    if (ring) wire_recv_.resize(in_transit);
    if (!ring && world_size_ > 1) wire_op_ = create_wire_sum_op(wire_);
  }
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
  if (wire_op_ != MPI_OP_NULL) MPI_Op_free(&wire_op_);
}

void GradientReducer::reduce_bucket(size_t k) {
  const Bucket& b = buckets_[k];
  float* data = grads_.data() + b.offset;
  timings_[k].start = now_seconds();
  if (world_size_ > 1) {
    const bool ring = strategy_ == AllreduceStrategy::ring;
    // With overlap, the communication thread polls the non-blocking rings and sleeps instead of
    // spinning inside MPI_Sendrecv: while the bytes are on the wire (the kernel moves them), its
    // core computes backward. See kPollInterval in the header.
    const auto poll = [](auto& op) {
      while (!op.progress()) std::this_thread::sleep_for(kPollInterval);
    };
    if (hosts_ && wire_ != WireDtype::fp32) {
      hierarchical_ring_allreduce_sum_wire16(data, b.count, ring_scratch_.data(), wire_send_.data(),
                                             wire_recv_.data(), wire_, *hosts_);
    } else if (hosts_ && overlap_) {
      HierarchicalRingAllreduce ar;
      ar.start(data, b.count, ring_scratch_.data(), *hosts_);
      poll(ar);
    } else if (hosts_) {
      hierarchical_ring_allreduce_sum(data, b.count, ring_scratch_.data(), *hosts_);
    } else if (wire_ == WireDtype::fp32 && ring && overlap_) {
      RingAllreduce ar;
      ar.start(data, b.count, ring_scratch_.data(), comm_);
      poll(ar);
    } else if (wire_ == WireDtype::fp32 && ring) {
      ring_allreduce_sum(data, b.count, ring_scratch_.data(), comm_);
    } else if (wire_ == WireDtype::fp32) {
      MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, data, checked_mpi_count(b.count), MPI_FLOAT, MPI_SUM, comm_));
    } else if (ring) {
      ring_allreduce_sum_wire16(data, b.count, wire_send_.data(), wire_recv_.data(), wire_, comm_);
    } else {
      encode_wire16(data, wire_send_.data(), b.count, wire_);
      MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, wire_send_.data(), checked_mpi_count(b.count), MPI_UINT16_T, wire_op_,
                              comm_));
      decode_wire16(wire_send_.data(), data, b.count, wire_);
    }
    const float inv_n = 1.0f / static_cast<float>(world_size_);
    for (size_t i = 0; i < b.count; ++i) data[i] *= inv_n;
  }
  timings_[k].end = now_seconds();
}

std::string GradientReducer::describe() const {
  std::string s = to_string(strategy_);
  if (hosts_)
    s = "hierarchical ring (" + std::to_string(hosts_->hosts()) + " hosts x " +
        std::to_string(hosts_->ranks_per_host()) + " ranks)";
  else if (!layout_note_.empty())
    s += " (" + layout_note_ + ")";
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
  if (overlap_) {
    std::unique_lock lock(mutex_);
    ready_ = buckets_.size();
    cv_.notify_all();
    cv_.wait(lock, [&] { return done_ == buckets_.size(); });
    ready_ = done_ = 0;
  } else {
    for (size_t k = 0; k < buckets_.size(); ++k) reduce_bucket(k);
  }
  stats_ = StepCommStats{};
  stats_.wait = now_seconds() - t0;
  if (!buckets_.empty()) {
    stats_.first_start = timings_.front().start;
    stats_.last_end = timings_.back().end;
  }
  stats_.calls = world_size_ > 1 ? buckets_.size() : 0;
  if (world_size_ > 1)
    for (const auto& b : buckets_) stats_.bytes += b.count * wire_bytes(wire_);
}

}  // namespace cifar
