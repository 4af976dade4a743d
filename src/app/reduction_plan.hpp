#pragma once
// How a run reduces its gradients: the buckets and each bucket's all-reduce, decided once at
// set-up (src/app/reduction_plan.cpp) and the same on every rank.
//   --bucket-mb X, --allreduce S:  plan_buckets' fixed cap, S for every bucket (as always).
//   --allreduce auto:              per bucket, the table's algorithm of least predicted time under
//                                  the link model (fitted by a start-up probe, or --link-model).
//   --bucket-mb auto (default):    overlap on: the boundaries of least predicted end of the last
//                                  reduction, from a timed backward and the link model
//                                  (plan_overlapped_buckets); overlap off: one bucket.
// The plan fixes the summation order, so a checkpoint stores it (text()) and a resumed run with
// the same ranks and the same asked options reuses it instead of planning anew (timings vary).
// Private to src/app.
#include <mpi.h>

#include <optional>
#include <string>
#include <vector>

#include "cifar_mpi/app/config.hpp"
#include "cifar_mpi/comm/bucket_plan.hpp"
#include "cifar_mpi/comm/link_model.hpp"
#include "cifar_mpi/model/network.hpp"

namespace cifar {

struct ReductionPlan {
  std::vector<Bucket> buckets;
  std::vector<AllreduceStrategy> strategies;  // per bucket
  std::optional<LinkModel> link;              // the fitted (or read) link, when auto asked for one
  std::vector<ReadyPoint> ready;              // the timed backward, when --bucket-mb auto planned
  std::string source;                         // "fixed", "planned", "checkpoint" (for the log)
  double probe_seconds = 0;                   // the link probe's wall time
  double timing_seconds = 0;                  // the timed backward's

  // "world=2;asked=auto/auto;buckets=0:1000,1000:24;strategies=ring,rhd": a checkpoint attribute.
  std::string text(int world, const Config& cfg) const;
  // The plan of `text` if it was made for this world and these asked options over `total` floats.
  static std::optional<ReductionPlan> reusable(const std::string& text, int world, const Config& cfg, size_t total);
};

// Collective. Plans (or, resuming, reuses the checkpoint's plan) with the --link-model file's
// model if there is one (RunSetup::link_file), else a probe's. `net` is the full-batch network:
// with --bucket-mb auto and overlap on it runs forward + backward twice to time the layers (the
// gradients it writes are overwritten by the first step; weights are untouched).
ReductionPlan plan_reduction(const Config& cfg, const std::optional<LinkModel>& link_file, ParamArena& arena,
                             Network& net, dnnl::stream& stream, MPI_Comm comm, bool root);

}  // namespace cifar
