#pragma once
// A thread that calls one function while it is armed, and sleeps otherwise. The function says how
// long to sleep before its next call; zero means it has nothing to do until the next arm().
//
// The gradient reducer arms it while reductions run beside backward: a long oneDNN primitive
// (conv2's weight gradient, ~13-35 ms on a 2-core machine) has no pause of its own, and without
// a call into MPI during it a reduction waits for the next pause at each of its rounds (MPI's
// all-reduce, the arrival check and TCP's window each need the receiving rank to poll). This
// thread is not a communication thread that spins: it sleeps between calls, so on a machine with
// no idle core it takes backward's core for a wake-up per call, not the core. A wake-up is dearer
// than the call (measured, 2 ranks on one 2-core host: waking every 500 us and returning at once
// made backward ~2 ms a step slower, like waking to poll), hence the sleeps its caller chooses.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace cifar {

class BackgroundPoller {
 public:
  // work() returns the sleep before its next call (zero: none until the next arm()).
  BackgroundPoller(std::chrono::microseconds first_wait, std::function<std::chrono::microseconds()> work);
  ~BackgroundPoller();  // disarms, stops and joins the thread
  BackgroundPoller(const BackgroundPoller&) = delete;
  BackgroundPoller& operator=(const BackgroundPoller&) = delete;

  // Calls work() after first_wait, then after each sleep it asks for. Arming an armed poller
  // keeps its sleep, and cancels a zero that a call in progress returns.
  void arm();
  // Stops calling work(); returns once a call in progress has returned, so that the caller may
  // touch what work() touches without a lock of its own.
  void disarm();
  bool armed() const { return armed_; }

 private:
  void loop();

  const std::chrono::microseconds first_wait_;
  const std::function<std::chrono::microseconds()> work_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::chrono::microseconds wait_{0};
  unsigned long arms_ = 0;  // arm() calls so far: a zero from work() stands only if none came meanwhile
  bool armed_ = false, busy_ = false, stop_ = false;
  std::thread thread_;  // last: starts once the rest is built
};

}  // namespace cifar
