// The stop signals (SIGTERM, SIGUSR1) must never be delivered to a thread running oneDNN: its JIT
// sgemm kernels point rsp into a heap workspace, so a signal frame written there corrupts the
// heap (uxlfoundation/oneDNN#4845; seen as "corrupted size vs. prev_size" after SIGUSR1). After
// install_stop_signal_handlers() the calling thread and the threads it starts have them blocked.
// No signal is sent here: the stop flag is process-wide and later tests train.
#include <gtest/gtest.h>
#include <pthread.h>

#include <csignal>
#include <thread>

#include "cifar_mpi/app/stop_signal.hpp"

namespace cifar {
namespace {

bool blocked_here(int sig) {
  sigset_t cur;
  sigemptyset(&cur);
  pthread_sigmask(SIG_BLOCK, nullptr, &cur);
  return sigismember(&cur, sig) == 1;
}

TEST(StopSignal, BlockedInTheCallerAndInThreadsItStarts) {
  install_stop_signal_handlers();
  install_stop_signal_handlers();  // idempotent: one waiting thread
  EXPECT_TRUE(blocked_here(SIGTERM));
  EXPECT_TRUE(blocked_here(SIGUSR1));
  bool term = false, usr1 = false;
  std::thread([&] {
    term = blocked_here(SIGTERM);
    usr1 = blocked_here(SIGUSR1);
  }).join();
  EXPECT_TRUE(term);
  EXPECT_TRUE(usr1);
  // The handler stays installed (a thread started before may still receive the signal).
  struct sigaction sa {};
  sigaction(SIGUSR1, nullptr, &sa);
  EXPECT_NE(sa.sa_handler, SIG_DFL);
  EXPECT_NE(sa.sa_handler, SIG_IGN);
  EXPECT_FALSE(stop_signal_received());
}

}  // namespace
}  // namespace cifar
