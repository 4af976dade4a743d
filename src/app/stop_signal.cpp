#include "cifar_mpi/app/stop_signal.hpp"

#include <csignal>

#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

namespace {
volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_stop_signal(int) { g_stop = 1; }
}  // namespace

void install_stop_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
}

bool stop_signal_received() { return g_stop != 0; }

bool any_rank_received_stop(MPI_Comm comm) {
  int mine = g_stop ? 1 : 0, any = 0;
  MPI_CHECK(MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, comm));
  return any != 0;
}

}  // namespace cifar
