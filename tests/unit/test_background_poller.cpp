// The background poller: calls its work only while armed, sleeps as long as the work asks, stops
// when the work returns zero until armed again, and disarm() returns only once a call in progress
// has returned. Waits are bounded generously and never decide by speed: a property
// that fails here fails on any machine.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "cifar_mpi/comm/background_poller.hpp"

namespace cifar {
namespace {

using std::chrono::microseconds;

// Waits until pred() holds (true) or 30 s pass (false).
template <class Pred>
bool eventually(Pred pred) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

TEST(BackgroundPoller, CallsOnlyWhileArmed) {
  std::atomic<int> calls{0};
  BackgroundPoller poller(microseconds{100}, [&] {
    ++calls;
    return microseconds{100};
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(calls.load(), 0) << "called before it was armed";
  poller.arm();
  EXPECT_TRUE(poller.armed());
  ASSERT_TRUE(eventually([&] { return calls.load() >= 3; })) << "armed, yet not called";
  poller.disarm();
  EXPECT_FALSE(poller.armed());
  const int after = calls.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // 200 intervals
  EXPECT_EQ(calls.load(), after) << "called after disarm() returned";
  poller.arm();  // again, as every step does
  ASSERT_TRUE(eventually([&] { return calls.load() > after; }));
}

TEST(BackgroundPoller, DisarmWaitsForTheCallInProgress) {
  std::atomic<bool> inside{false}, finished{false};
  BackgroundPoller poller(microseconds{10}, [&] {
    inside = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    finished = true;
    return microseconds{10};
  });
  poller.arm();
  ASSERT_TRUE(eventually([&] { return inside.load(); }));
  poller.disarm();
  EXPECT_TRUE(finished.load()) << "disarm() returned while work() was still running";
}

TEST(BackgroundPoller, DestroysWhileArmed) {
  std::atomic<int> calls{0};
  {
    BackgroundPoller poller(microseconds{10}, [&] {
      ++calls;
      return microseconds{10};
    });
    poller.arm();
    ASSERT_TRUE(eventually([&] { return calls.load() > 0; }));
  }  // joins without a disarm first
  const int after = calls.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(calls.load(), after);
}

TEST(BackgroundPoller, AZeroSleepStopsItUntilArmedAgain) {
  std::atomic<int> calls{0};
  BackgroundPoller poller(microseconds{10}, [&] {
    ++calls;
    return microseconds{0};
  });
  poller.arm();
  ASSERT_TRUE(eventually([&] { return !poller.armed(); })) << "a zero did not stop it";
  EXPECT_EQ(calls.load(), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // 2000 first sleeps
  EXPECT_EQ(calls.load(), 1) << "called again without an arm()";
  poller.arm();
  ASSERT_TRUE(eventually([&] { return calls.load() == 2 && !poller.armed(); }));
}

TEST(BackgroundPoller, KeepsTheSleepItIsGiven) {
  std::atomic<int> calls{0};
  BackgroundPoller poller(microseconds{10}, [&] {
    ++calls;
    return std::chrono::duration_cast<microseconds>(std::chrono::hours(1));
  });
  poller.arm();
  ASSERT_TRUE(eventually([&] { return calls.load() == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(calls.load(), 1) << "called again before the hour it asked to sleep";
  poller.arm();  // an armed poller keeps its sleep
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(calls.load(), 1);
}

}  // namespace
}  // namespace cifar
