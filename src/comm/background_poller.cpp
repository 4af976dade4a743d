#include "cifar_mpi/comm/background_poller.hpp"

namespace cifar {

BackgroundPoller::BackgroundPoller(std::chrono::microseconds first_wait, std::function<std::chrono::microseconds()> work)
    : first_wait_(first_wait), work_(std::move(work)), thread_([this] { loop(); }) {}

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
    ++arms_;
    if (armed_) return;
    armed_ = true;
    wait_ = first_wait_;
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
    // Sleeps the whole wait unless disarmed meanwhile (a disarm wakes it at once).
    if (cv_.wait_for(lock, wait_, [this] { return !armed_ || stop_; })) continue;
    busy_ = true;
    const unsigned long arms = arms_;
    lock.unlock();
    const std::chrono::microseconds next = work_();
    lock.lock();
    busy_ = false;
    if (next.count() > 0)
      wait_ = next;
    else if (arms_ == arms)
      armed_ = false;  // nothing to do until the next arm()
    else
      wait_ = first_wait_;  // armed again meanwhile: there is something new
    cv_.notify_all();
  }
}

}  // namespace cifar
