#include "cifar_mpi/app/run_summary.hpp"

#include <cstdio>

#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

void print_run_summary(const Config& cfg, const RunResult& r, MPI_Comm comm) {
  int rank = 0, world = 1;
  MPI_CHECK(MPI_Comm_rank(comm, &rank));
  MPI_CHECK(MPI_Comm_size(comm, &world));
  // Per-rank totals, then the mean and the max over ranks (the slowest rank sets the pace).
  enum { kData, kComp, kComm, kWait, kUpdate, kCalls, kBytes, kN };
  double mine[kN] = {};
  for (const auto& s : r.steps) {
    mine[kData] += s.t_data;
    mine[kComp] += s.t_comp;
    mine[kComm] += s.t_comm;
    mine[kWait] += s.t_wait;
    mine[kUpdate] += s.t_update;
    mine[kCalls] += s.comm_calls;
    mine[kBytes] += static_cast<double>(s.comm_bytes);
  }
  double sum[kN], max[kN];
  MPI_CHECK(MPI_Reduce(mine, sum, kN, MPI_DOUBLE, MPI_SUM, 0, comm));
  MPI_CHECK(MPI_Reduce(mine, max, kN, MPI_DOUBLE, MPI_MAX, 0, comm));
  if (rank != 0) return;
  const double steps = static_cast<double>(std::max<size_t>(1, r.steps.size()));
  const double epochs = static_cast<double>(std::max<size_t>(1, r.epochs.size()));
  const double images = static_cast<double>(r.images_per_rank) * world;
  auto mean = [&](int k) { return sum[k] / world; };
  std::printf("\n==== summary: %d rank(s) x %d thread(s), allreduce %s, overlap %s, bucket %.3g MB, wire %s ====\n",
              world, cfg.threads, to_string(cfg.allreduce).c_str(), cfg.overlap ? "on" : "off", cfg.bucket_mb,
              to_string(cfg.wire_dtype).c_str());
  std::printf("  %-34s %12.0f\n", "comm calls per epoch (per rank)", mean(kCalls) / epochs);
  std::printf("  %-34s %12.3f s   (max over ranks %.3f s)\n", "total comm time (T_comm)", mean(kComm), max[kComm]);
  std::printf("  %-34s %12.3f s   (max over ranks %.3f s)\n", "exposed comm time (T_wait)", mean(kWait), max[kWait]);
  std::printf("  %-34s %12.3f s\n", "total compute time (T_comp)", mean(kComp));
  std::printf("  %-34s %12.3f s\n", "data time (T_data)", mean(kData));
  std::printf("  %-34s %12.3f s\n", "update time (T_update)", mean(kUpdate));
  double train_wall = 0;  // epochs' training time, without evaluation
  for (const auto& e : r.epochs) train_wall += e.wall;
  std::printf("  %-34s %12.3f ms\n", "average iteration time", 1e3 * train_wall / steps);
  if (mean(kCalls) > 0)
    std::printf("  %-34s %12.2f\n", "compute-to-comm ratio", mean(kComp) / mean(kComm));
  else
    std::printf("  %-34s %12s\n", "compute-to-comm ratio", "n/a (1 rank)");
  std::printf("  %-34s %12.1f MB\n", "gradient bytes reduced per rank", mean(kBytes) / 1e6);
  std::printf("  %-34s %12.3f s   (with evaluation %.3f s)\n", "total training time", train_wall, r.total_wall);
  std::printf("  %-34s %12.0f\n", "images/s (all ranks)", images / train_wall);
  if (cfg.eval && !r.stopped && !r.epochs.empty())
    std::printf("  %-34s %11.2f%%\n", "final test accuracy", 100 * r.epochs.back().test_accuracy);
  else
    std::printf("  %-34s %12s\n", "final test accuracy", "n/a (no evaluation)");
  if (!r.metrics_path.empty()) std::printf("  %-34s %s\n", "metrics file (HDF5)", r.metrics_path.c_str());
  std::fflush(stdout);
}

}  // namespace cifar
