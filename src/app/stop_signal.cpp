#include "cifar_mpi/app/stop_signal.hpp"

#include <pthread.h>

#include <csignal>
#include <mutex>
#include <thread>

#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

namespace {
volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop_signal(int) { g_stop = 1; }

sigset_t stop_signal_set() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  return set;
}
}  // namespace

// The signals must never interrupt a thread running oneDNN: oneDNN's JIT sgemm kernels (2.x and
// 3.x up to 3.11, uxlfoundation/oneDNN#4845) point rsp into a heap workspace while they run, so
// the kernel's signal frame lands on the heap below it ("corrupted size vs. prev_size"). They are
// blocked in the calling thread, and so in every thread it starts afterwards (the OpenMP team,
// the overlap's communication thread), and taken by one thread that waits for them. The handler
// stays for threads started earlier (Open MPI's, when called after MPI_Init) that may receive
// them: it only sets the flag, and without it SIGTERM would end the process.
void install_stop_signal_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGUSR1, &sa, nullptr);
    const sigset_t set = stop_signal_set();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    std::thread([set] {
      for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) == 0) g_stop = 1;
      }
    }).detach();
  });
}

bool stop_signal_received() { return g_stop != 0; }

bool any_rank_received_stop(MPI_Comm comm) {
  int mine = g_stop ? 1 : 0, any = 0;
  MPI_CHECK(MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, comm));
  return any != 0;
}

}  // namespace cifar
