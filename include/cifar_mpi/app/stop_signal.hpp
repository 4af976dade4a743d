#pragma once
// SIGTERM and SIGUSR1 (what Slurm sends before the time limit, with --signal) ask the run to
// stop: the handler only sets a flag; the training loop asks all ranks at a step boundary
// whether any rank got the signal, so every rank stops after the same step, writes the same
// checkpoint and exits with kExitCheckpointed.
#include <mpi.h>

namespace cifar {

inline constexpr int kExitCheckpointed = 75;  // EX_TEMPFAIL: "try again", the job requeues

// Idempotent. Blocks SIGTERM and SIGUSR1 in the calling thread and the threads it starts later,
// and starts one thread that waits for them: call it before any thread that runs oneDNN exists.
void install_stop_signal_handlers();
bool stop_signal_received();                  // this rank
bool any_rank_received_stop(MPI_Comm comm);   // collective

}  // namespace cifar
