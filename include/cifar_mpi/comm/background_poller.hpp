#pragma once
// A thread that calls one function at a fixed interval while it is armed, and sleeps otherwise.
//
// The gradient reducer arms it while reductions run beside backward: a long oneDNN primitive
// (conv2's weight gradient, ~13-35 ms on a 2-core machine) has no pause of its own, and without
// a call into MPI during it a reduction waits for the next pause at each of its rounds (MPI's
// all-reduce, the arrival check and TCP's window each need the receiving rank to poll). This
// thread is not a communication thread that spins: it sleeps between calls, so on a machine with
// no idle core it takes a few microseconds of backward's core per interval, not the core.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace cifar {

class BackgroundPoller {
 public:
  BackgroundPoller(std::chrono::microseconds interval, std::function<void()> work);
  ~BackgroundPoller();  // disarms, stops and joins the thread
  BackgroundPoller(const BackgroundPoller&) = delete;
  BackgroundPoller& operator=(const BackgroundPoller&) = delete;

  // From the next interval on, calls work() every interval.
  void arm();
  // Stops calling work(); returns once a call in progress has returned, so that the caller may
  // touch what work() touches without a lock of its own.
  void disarm();
  bool armed() const { return armed_; }

 private:
  void loop();

  const std::chrono::microseconds interval_;
  const std::function<void()> work_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool armed_ = false, busy_ = false, stop_ = false;
  std::thread thread_;  // last: starts once the rest is built
};

}  // namespace cifar
