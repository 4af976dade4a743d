#pragma once
// The end-of-run table of the reference PyTorch script, from every rank's step records:
// comm calls per epoch, total comm time, average iteration time, compute-to-comm ratio; the
// numbers are summarize()'s (metrics/metrics_file.hpp), as in the metrics file's summary group.
#include <mpi.h>

#include "cifar_mpi/app/trainer.hpp"

namespace cifar {

// Collective: every rank must call it. Rank 0 prints.
void print_run_summary(const Config& cfg, const RunResult& r, MPI_Comm comm);

}  // namespace cifar
