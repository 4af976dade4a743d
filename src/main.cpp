// cifar_mpi: synchronous data-parallel training of the reference CNN on CIFAR-10.
//   mpirun -np N ./build/cifar_mpi [options]     (a plain ./build/cifar_mpi is N = 1)
// Every failure is one line on stderr and a non-zero exit; with N > 1 it aborts every rank, so
// no rank is left waiting in a collective for one that has gone. A failure every rank detects
// together (CollectiveError: configuration differs between ranks, NaN/Inf at a step) is printed
// once, by rank 0, and every rank exits 1.
// Exit codes (listed by --help and docs/reference.md: kExitCodes in app/options_text.hpp): 0 done;
// 1 error; 75 (kExitCheckpointed) stopped by SIGTERM/SIGUSR1 after writing a checkpoint; 76
// (kExitStalled, comm/stall_watch.hpp) a rank did not arrive within --stall-timeout (the waiting
// ranks name it and _exit; mpirun ends the rest).
#include <mpi.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iterator>
#include <optional>
#include <string>

#include "cifar_mpi/app/config.hpp"
#include "cifar_mpi/app/options_text.hpp"
#include "cifar_mpi/app/run_checks.hpp"
#include "cifar_mpi/app/run_summary.hpp"
#include "cifar_mpi/app/stop_signal.hpp"
#include "cifar_mpi/app/trainer.hpp"
#include "cifar_mpi/app/version_text.hpp"
#include "cifar_mpi/comm/open_mpi_defaults.hpp"
#include "cifar_mpi/comm/stall_watch.hpp"
#include "cifar_mpi/metrics/metrics_file.hpp"

namespace {

// What --help and docs/reference.md say is what the program returns.
static_assert(cifar::kExitCodes[0].code == 0 && cifar::kExitCodes[1].code == 1 &&
              cifar::kExitCodes[2].code == cifar::kExitCheckpointed && cifar::kExitCodes[3].code == cifar::kExitStalled &&
              std::size(cifar::kExitCodes) == 4);

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}
int world_size() {
  int n = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

// Exits without atexit handlers: after a failed write (disk full), HDF5 1.10's own exit-time
// cleanup crashes on the file it could not close, which would turn exit 1 into a SIGSEGV.
[[noreturn]] void exit_now(int code) {
  std::fflush(nullptr);
  std::_Exit(code);
}

[[noreturn]] void fail(const char* what) {
  if (world_size() > 1)
    std::fprintf(stderr, "cifar_mpi: error (rank %d): %s\n", world_rank(), what);
  else
    std::fprintf(stderr, "cifar_mpi: error: %s\n", what);
  std::fflush(stderr);
  if (world_size() > 1) MPI_Abort(MPI_COMM_WORLD, 1);  // ends every rank promptly
  MPI_Finalize();
  exit_now(1);
}

// Every rank threw the same error: rank 0 says it once, and all end normally.
[[noreturn]] void fail_together(const char* what) {
  if (world_rank() == 0) std::fprintf(stderr, "cifar_mpi: error: %s\n", what);
  MPI_Finalize();
  exit_now(1);
}

}  // namespace

int main(int argc, char** argv) {
  // A file size limit (ulimit -f) then fails the write with EFBIG, which names the file, instead
  // of killing the process with SIGXFSZ.
  std::signal(SIGXFSZ, SIG_IGN);
  // Before MPI_Init, so that Open MPI's threads too start with SIGTERM/SIGUSR1 blocked and the
  // stop signals reach only the thread that waits for them (see stop_signal.cpp).
  cifar::install_stop_signal_handlers();
  int provided = 0;
  // The stall watchdog (stall_watch.hpp) answers pings from its own thread while the main one works.
  cifar::apply_open_mpi_defaults();  // libnbc's all-reduce algorithm, copies within a host
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  std::set_terminate([] {
    const auto e = std::current_exception();
    try {
      if (e) std::rethrow_exception(e);
      fail("terminated");
    } catch (const std::exception& ex) {
      fail(ex.what());
    } catch (...) {
      fail("unknown exception");
    }
  });
  spdlog::set_pattern("[%H:%M:%S] %v");
  // Each line out at once, also into a pipe (tools/elastic_run.sh, Slurm's log): a launcher reads
  // the progress lines of a job that may be killed the next moment.
  spdlog::flush_on(spdlog::level::info);
  try {
    // A bad option fails on every rank alike: said once, by rank 0, with no abort banner.
    std::optional<cifar::Config> cfg;
    std::string parse_error;
    try {
      cfg = cifar::parse_config(argc, argv, world_rank() == 0, cifar::version_text);
    } catch (const std::exception& e) {
      parse_error = e.what();
      if (parse_error.empty()) parse_error = "unknown error while reading the options";
    }
    cifar::agree_on_parse_error(parse_error, MPI_COMM_WORLD);
    // Ranks started with different options (mpirun's MPMD syntax, another config file) would
    // train different things or wait forever in a collective: all ranks compare first.
    cifar::check_config_agreement(cfg ? &*cfg : nullptr, MPI_COMM_WORLD);
    if (!cfg) {  // --help or --version
      MPI_Finalize();
      return 0;
    }
    // Every run writes a metrics file; rank 0 alone writes it, so only rank 0 needs its name.
    if (cfg->metrics.empty() && world_rank() == 0) cfg->metrics = cifar::default_metrics_path(world_size()).string();
    const auto result = cifar::run_training(*cfg, MPI_COMM_WORLD);
    cifar::print_run_summary(*cfg, result, MPI_COMM_WORLD);
    if (result.stopped) {  // checkpointed on SIGTERM/SIGUSR1: a distinct code, so the job requeues
      MPI_Finalize();
      return cifar::kExitCheckpointed;
    }
  } catch (const cifar::PartialError&) {  // the ranks that failed have said why
    MPI_Finalize();
    exit_now(1);
  } catch (const cifar::CollectiveError& e) {
    fail_together(e.what());
  } catch (const std::exception& e) {
    fail(e.what());
  }
  MPI_Finalize();
  return 0;
}
