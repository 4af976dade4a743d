#include "cifar_mpi/app/run_summary.hpp"

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "cifar_mpi/metrics/metrics_file.hpp"
#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

namespace {

// What overlap did to the step, against the same run's held-back steps (overlap_figure.hpp).
void print_overlap_figure(const OverlapFigure& o, bool overlap, int world, const std::string& trial) {
  if (!overlap || world == 1) return;
  if (!trial.empty()) std::printf("  %-34s %s\n", "overlap: trial", trial.c_str());
  if (o.reference_steps == 0 || o.steps == 0) {
    std::printf("  %-34s %12s\n", "overlap: step against none", "n/a (too few steps to compare)");
    return;
  }
  std::printf("  %-34s %9.2f ms   against %.2f ms without overlap (%zu held-back steps: T_comp %.2f + T_comm "
              "%.2f + data and update %.2f ms)\n",
              "overlap: step (slowest rank)", 1e3 * o.step, 1e3 * o.no_overlap_step, o.reference_steps,
              1e3 * o.comp_ref, 1e3 * o.comm_ref, 1e3 * o.other_ref);
  std::printf("  %-34s %9.2f ms   = %.0f%% of T_comm hidden, %.0f%% of the possible saving (min of T_comp, T_comm)\n",
              "overlap: saved per step", 1e3 * o.saving, 100 * o.hidden, 100 * o.realised);
  std::printf("  %-34s %9.2f ms   T_comp %+.0f%% (the reductions advanced inside it: %.2f ms a step); "
              "T_comm %.2f ms, T_wait %.2f ms\n",
              "overlap: T_comp beside the comm", 1e3 * o.comp, 100 * o.comp_inflation, 1e3 * o.progress, 1e3 * o.comm, 1e3 * o.wait);
}

}  // namespace

void print_run_summary(const Config& cfg, const RunResult& r, MPI_Comm comm) {
  int rank = 0, world = 1;
  MPI_CHECK(MPI_Comm_rank(comm, &rank));
  MPI_CHECK(MPI_Comm_size(comm, &world));
  // Every rank's steps to rank 0, which sums them as the metrics file's summary does: the two
  // cannot disagree. Per-rank totals are means over the ranks, with the max (the slowest rank
  // sets the pace).
  const std::vector<StepRecord> all = gather_step_records(r.steps, comm);
  // --balance dynamic: how the images fell to the ranks (an even split is 1/N each).
  const auto mine = static_cast<unsigned long long>(r.images_trained);
  std::vector<unsigned long long> trained(static_cast<size_t>(world));
  MPI_CHECK(MPI_Gather(&mine, 1, MPI_UNSIGNED_LONG_LONG, trained.data(), 1, MPI_UNSIGNED_LONG_LONG, 0, comm));
  if (rank != 0) return;
  const MetricsSummary m = summarize(r.epochs, all, world, cfg.eval, cfg.overlap, r.total_wall);
  std::printf("\n==== summary: %d rank(s) x %d thread(s), allreduce %s, overlap %s, bucket %s MB, wire %s ====\n",
              world, cfg.threads, to_string(cfg.allreduce).c_str(), cfg.overlap ? "on" : "off",
              find_option("bucket_mb")->value(cfg).c_str(),
              to_string(cfg.wire_dtype).c_str());
  std::printf("  %-34s %12.0f\n", "comm calls per epoch (per rank)", m.comm_calls_per_epoch);
  std::printf("  %-34s %12.3f s   (max over ranks %.3f s)\n", "total comm time (T_comm)", m.total_comm_time,
              m.total_comm_time_max);
  std::printf("  %-34s %12.3f s   (max over ranks %.3f s)\n", "exposed comm time (T_wait)", m.total_wait_time,
              m.total_wait_time_max);
  std::printf("  %-34s %12.3f s\n", "total compute time (T_comp)", m.total_comp_time);
  std::printf("  %-34s %12.3f s\n", "data time (T_data)", m.total_data_time);
  std::printf("  %-34s %12.3f s\n", "update time (T_update)", m.total_update_time);
  std::printf("  %-34s %12.3f ms\n", "average iteration time", 1e3 * m.avg_iteration_time);
  if (m.comm_calls_per_epoch > 0)
    std::printf("  %-34s %12.2f\n", "compute-to-comm ratio", m.compute_to_comm_ratio);
  else
    std::printf("  %-34s %12s\n", "compute-to-comm ratio", "n/a (1 rank)");
  std::printf("  %-34s %12.1f MB\n", "gradient bytes reduced per rank", m.comm_bytes_per_rank / 1e6);
  print_overlap_figure(m.overlap, cfg.overlap, world, r.overlap_trial);
  std::printf("  %-34s %12.3f s   (with evaluation %.3f s)\n", "total training time", m.total_train_time,
              m.total_wall);
  std::printf("  %-34s %12.0f\n", "images/s (all ranks)", m.images_per_second);
  if (cfg.balance == Config::Balance::dynamic) {
    const auto [least, most] = std::minmax_element(trained.begin(), trained.end());
    double total = 0;
    for (const auto t : trained) total += static_cast<double>(t);
    const auto share = [&](auto it) { return total > 0 ? 100.0 * static_cast<double>(*it) / total : 0.0; };
    std::printf("  %-34s %11.1f%% (rank %td) .. %.1f%% (rank %td), even %.1f%%\n", "images trained (--balance dynamic)",
                share(least), least - trained.begin(), share(most), most - trained.begin(), 100.0 / world);
  }
  if (cfg.eval && !r.stopped && !r.epochs.empty())
    std::printf("  %-34s %11.2f%%\n", "final test accuracy", 100 * m.final_test_accuracy);
  else
    std::printf("  %-34s %12s\n", "final test accuracy", "n/a (no evaluation)");
  if (r.target.target > 0 && r.target.reached)
    std::printf("  %-34s %12.3f s   (%.3f s without evaluation; step %lld, epoch %.2f)\n",
                ("time to " + std::to_string(100 * r.target.target).substr(0, 5) + "% test accuracy").c_str(),
                r.target.time, r.target.train_time, r.target.steps, r.target.epochs);
  else if (r.target.target > 0)
    std::printf("  %-34s %12s\n", ("target " + std::to_string(100 * r.target.target).substr(0, 5) + "%").c_str(),
                "not reached");
  if (r.checkpoints_written > 0)  // what checkpointing cost the steps (the writer thread does the disk)
    std::printf("  %-34s %12zu     (%.1f ms of the training thread, %.3f%% of training time)\n",
                "checkpoints written", r.checkpoints_written, 1e3 * r.checkpoint_seconds,
                m.total_train_time > 0 ? 100 * r.checkpoint_seconds / m.total_train_time : 0.0);
  if (!r.metrics_path.empty()) std::printf("  %-34s %s\n", "metrics file (HDF5)", r.metrics_path.c_str());
  std::fflush(stdout);
}

}  // namespace cifar
