#include "cifar_mpi/comm/background_poller.hpp"

namespace cifar {

BackgroundPoller::BackgroundPoller(std::chrono::microseconds interval, std::function<void()> work)
    : interval_(interval), work_(std::move(work)), thread_([this] { loop(); }) {}

BackgroundPoller::~BackgroundPoller() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
    armed_ = false;
  }
  cv_.notify_all();
  thread_.join();
}

void BackgroundPoller::arm() {
  {
    std::lock_guard lock(mutex_);
    if (armed_) return;
    armed_ = true;
  }
  cv_.notify_all();
}

void BackgroundPoller::disarm() {
  std::unique_lock lock(mutex_);
  if (!armed_ && !busy_) return;
  armed_ = false;
  cv_.notify_all();
  cv_.wait(lock, [this] { return !busy_; });
}

void BackgroundPoller::loop() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    if (!armed_) {
      cv_.wait(lock, [this] { return armed_ || stop_; });
      continue;
    }
    // Sleeps a whole interval unless disarmed meanwhile (a disarm wakes it at once).
    if (cv_.wait_for(lock, interval_, [this] { return !armed_ || stop_; })) continue;
    busy_ = true;
    lock.unlock();
    work_();
    lock.lock();
    busy_ = false;
    cv_.notify_all();
  }
}

}  // namespace cifar
