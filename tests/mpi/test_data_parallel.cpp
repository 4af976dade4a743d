// Synchronous data parallelism end to end: SimpleCnn + GradientReducer + SgdMomentum at N ranks,
// for every all-reduce strategy (naive / mpi / ring / rhd), overlap off and on, and two bucket sizes
// (the default 25 MB: one bucket; 0.05 MB: three buckets; naive always has one per tensor).
//
//   UnionBatchGradientEquivalence  N ranks at batch b, each on its DistributedSampler share of
//       one global batch of G = N*b, average to the gradient one network of batch G computes
//       over the whole global batch: per tensor max|got - want| <= 1e-5 * max(1, max|want|).
//   ReplicasStayBitwiseIdentical   K = 3 full steps on different data per rank leave every rank
//       with the same parameters (and averaged gradients) bit for bit (rank 0's copy broadcast,
//       memcmp).
//   StrategiesAgree                after K = 3 steps every variant's parameters are within
//       1e-6 * max(1, max|want|) per tensor of mpi / overlap off / one bucket; overlap on and off
//       with the same strategy and buckets are bitwise equal (for mpi and naive only at N <= 2:
//       overlapped, MPI's all-reduce is MPI_Iallreduce, which may add in another order than
//       MPI_Allreduce; its replicas must still be bitwise identical). Overlap on runs as the
//       trainer does: polled at every pause of backward, with the arrival check of
//       --stall-timeout tested between layers, and its second step held back.
//   CompressedWireKeepsReplicasIdentical  bf16 / fp16 on the wire, every strategy, several
//       buckets, overlap off and on: after K = 3 steps the replicas are still bitwise identical,
//       overlap on equals off bit for bit (mpi and naive: as above), and the parameters stay
//       within 5e-4 * max(1, max|want|) per tensor of the fp32 run (5e-4; and, at N > 1, differ from it: the wire really is 16-bit).
//   StepCommStatsAreConsistent     calls = buckets, bytes = gradient bytes (both 0 at N = 1), times
//       ordered and non-negative, naive = 8 buckets; overlap on starts the first bucket before
//       backward returns, overlap off only after.
//
// Every verdict goes through all_ranks(), so all ranks agree and none is left in a collective.
// Non-zero ranks have no gtest printer (mpi_gtest_main.cc): they write the details of a local
// failure to stderr with a "[rank r]" prefix.
#include <gtest/gtest.h>
#include <mpi.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "cifar_mpi/app/config.hpp"
#include "cifar_mpi/comm/bucket_plan.hpp"
#include "cifar_mpi/comm/gradient_reducer.hpp"
#include "cifar_mpi/comm/link_model.hpp"
#include "cifar_mpi/comm/stall_watch.hpp"
#include "cifar_mpi/data/cifar_dataset.hpp"
#include "cifar_mpi/data/distributed_sampler.hpp"
#include "cifar_mpi/model/param_arena.hpp"
#include "simple_cnn_model.hpp"
#include "cifar_mpi/optim/sgd_momentum.hpp"
#include "cifar_mpi/util/clock.hpp"
#include "engine_fixture.hpp"
#include "mpi/mpi_test_util.hpp"
#include "test_util.hpp"

namespace {

using cifar::AllreduceStrategy;
using cifar::GradientReducer;
using cifar::ParamArena;
using cifar::SimpleCnn;
using cifar::testing::all_ranks;
using cifar::testing::bits_equal;
using cifar::testing::same_bits_as_rank0;
using cifar::testing::world_rank;
using cifar::testing::world_size;

constexpr uint64_t kWeightSeed = 20240601;
constexpr size_t kLocalBatch = 4;  // b: per-rank batch
constexpr int kSteps = 3;          // K
constexpr float kLr = 0.05f, kMomentum = 0.9f;
constexpr double kDefaultBucketMb = 25.0, kSmallBucketMb = 0.05;
constexpr size_t kImageFloats = cifar::kImageBytes;  // 3 * 32 * 32

// Union-batch gradient: the sum over ranks of per-rank means differs from the global mean only
// in the order of float additions.
constexpr double kGradTol = 1e-5;
// Parameters after K steps, strategy vs strategy: only the order of additions in the all-reduce
// differs (a few ulps of each gradient), carried through K SGD steps.
constexpr double kParamTol = 1e-6;
// Parameters after K steps with a 16-bit wire type vs fp32 (seen: 5e-5 to 6e-5 at N = 2..4).
constexpr double kCompressedTol = 5e-4;

struct Variant {
  AllreduceStrategy strategy;
  bool overlap;
  double bucket_mb;
  cifar::WireDtype wire = cifar::WireDtype::fp32;
  int per_host = 0;  // > 0: hosts of this many ranks drawn on this machine (host = rank / per_host)
  std::string name() const {
    return cifar::to_string(strategy) + (overlap ? "/overlap-on/" : "/overlap-off/") +
           (bucket_mb == kDefaultBucketMb ? "25MB" : "0.05MB") +
           (wire == cifar::WireDtype::fp32 ? "" : "/" + cifar::to_string(wire)) +
           (per_host ? "/" + std::to_string(per_host) + "-per-host" : "");
  }
  int host_color() const { return per_host ? world_rank() / per_host : -1; }
};

// Every strategy x bucket size x overlap (naive ignores the bucket size: one bucket per tensor,
// run at both anyway, the plans are then identical). auto stands for --allreduce auto's kind of
// plan: each bucket its own all-reduce, here every candidate in turn (strategies_for), so that
// buckets with different algorithms run side by side whatever a probe would find.
std::vector<Variant> all_variants() {
  std::vector<Variant> v;
  for (AllreduceStrategy s : {AllreduceStrategy::naive, AllreduceStrategy::mpi, AllreduceStrategy::ring,
                              AllreduceStrategy::rhd, AllreduceStrategy::auto_})
    for (double mb : {kDefaultBucketMb, kSmallBucketMb})
      for (bool overlap : {false, true}) v.push_back({s, overlap, mb});
  return v;
}

// The trainer's plan (ModelState in src/app/training_run.cpp).
std::vector<cifar::Bucket> plan_for(const ParamArena& arena, const Variant& v) {
  return cifar::plan_buckets(arena, static_cast<size_t>(v.bucket_mb * 1e6), v.strategy == AllreduceStrategy::naive);
}

// Each bucket's all-reduce: the variant's, or for auto the table's candidates in turn.
std::vector<AllreduceStrategy> strategies_for(const Variant& v, size_t buckets) {
  if (v.strategy != AllreduceStrategy::auto_) return std::vector<AllreduceStrategy>(std::max<size_t>(1, buckets), v.strategy);
  const auto c = cifar::auto_candidates();
  std::vector<AllreduceStrategy> s;
  for (size_t k = 0; k < std::max<size_t>(1, buckets); ++k) s.push_back(c[k % c.size()]);
  return s;
}

GradientReducer make_reducer(const ParamArena& arena, std::span<float> grads, const Variant& v) {
  auto plan = plan_for(arena, v);
  const auto strategies = strategies_for(v, plan.size());
  return GradientReducer(grads, std::move(plan), strategies, v.overlap, MPI_COMM_WORLD, v.wire,
                         cifar::RingLayout::hosts, v.host_color());
}

// How many floats differ from rank 0's (for the failure message).
// Whether overlap must change no bit: the ring and rhd run the same steps polled as waited; MPI's
// all-reduce polled is MPI_Iallreduce (libnbc), waited MPI_Allreduce (tuned), which may add in
// another order from N = 3 on (at N <= 2 every order gives the same bits).
bool overlap_keeps_bits(AllreduceStrategy s) {
  return (s != AllreduceStrategy::mpi && s != AllreduceStrategy::naive) || cifar::testing::world_size() <= 2;
}

size_t count_diff_from_rank0(std::span<const float> v) {
  std::vector<float> root(v.begin(), v.end());
  if (!root.empty()) MPI_Bcast(root.data(), static_cast<int>(root.size()), MPI_FLOAT, 0, MPI_COMM_WORLD);
  size_t d = 0;
  for (size_t i = 0; i < v.size(); ++i) d += std::memcmp(&root[i], &v[i], sizeof(float)) != 0;
  return d;
}

double max_over_ranks(double x) {
  MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return x;
}

std::vector<float> slice(std::span<const float> all, const cifar::TensorSpec& s) {
  return {all.begin() + static_cast<std::ptrdiff_t>(s.offset),
          all.begin() + static_cast<std::ptrdiff_t>(s.offset + s.count)};
}

// Per-tensor comparison; returns the worst max|err| / max(1, max|want|) and fills `ok`/`why`.
double compare_tensors(const ParamArena& layout, std::span<const float> got, std::span<const float> want,
                       double tol, bool& ok, std::string& why) {
  double worst = 0;
  for (const auto& s : layout.specs()) {
    const auto r = cifar::testing::compare_close(slice(got, s), slice(want, s), tol, tol);
    worst = std::max(worst, r.max_abs_err / std::max(1.0, r.max_abs_want));
    if (!r.ok) {
      ok = false;
      why += "\n    " + cifar::testing::describe(s.name, r, s.shape);
    }
  }
  return worst;
}

void report_local_failure(bool ok, const std::string& what) {
  if (!ok) std::fprintf(stderr, "[rank %d] %s\n", world_rank(), what.c_str());
}

void print_rank0(const std::string& line) {
  if (world_rank() == 0) std::printf("[ DATAPAR  ] %s\n", line.c_str());
}

std::string fmt(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", x);
  return buf;
}

class DataParallel : public ::testing::Test {
 protected:
  void SetUp() override { omp_set_num_threads(1); }
  cifar::testing::Engine e;
};

// Different data on every rank and every step, a fixed function of (rank, step).
struct StepData {
  std::vector<float> x;
  std::vector<int32_t> y;
};
std::vector<StepData> per_rank_data() {
  std::vector<StepData> d;
  const auto rank = static_cast<uint64_t>(world_rank());
  for (int s = 0; s < kSteps; ++s)
    d.push_back({cifar::testing::random_input(kLocalBatch, 1000 + 101 * rank + static_cast<uint64_t>(s)),
                 cifar::testing::random_labels(kLocalBatch, 5000 + 101 * rank + static_cast<uint64_t>(s))});
  return d;
}

struct Trained {
  std::vector<float> params, grads;  // after K steps; grads = the last step's averaged gradient
  size_t buckets = 0;
  size_t arrivals = 0;  // overlap on, N > 1: steps whose arrival check named a last rank
};

// K full steps as the trainer does them, from the seed's weights and fresh momentum.
Trained train(cifar::testing::Engine& e, ParamArena& arena, SimpleCnn& net, const std::vector<StepData>& data,
              const Variant& v) {
  cifar::init_pytorch_default(arena, kWeightSeed);
  cifar::SgdMomentum sgd(arena.total_count(), kLr, kMomentum);
  GradientReducer reducer = make_reducer(arena, arena.grads(), v);
  const auto hook = [&reducer](size_t ready) { reducer.on_grads_ready(ready); };
  const auto poll = [&reducer] { reducer.poll(); };  // as the trainer: at every pause of backward
  // Overlap on as the trainer runs it: the arrival check of --stall-timeout posted at the first
  // bucket and tested between layers, and the second step held back (a reference step for the
  // overlap figure), with the background poller. None may change a bit.
  std::optional<cifar::StallWatch> watch;
  if (v.overlap) {
    watch.emplace(MPI_COMM_WORLD, 0.0);
    reducer.set_stall_watch(&*watch);
    // And the background poller, much more often than the trainer's (more chances to race).
    reducer.set_background_poll(std::chrono::microseconds{20});
  }
  size_t arrivals = 0;
  for (size_t i = 0; i < data.size(); ++i) {
    const auto& d = data[i];
    reducer.set_step_overlap(i != 1);
    std::copy(d.x.begin(), d.x.end(), net.input());
    net.forward_backward(e.stream, d.y.data(), kLocalBatch, hook, poll);
    reducer.finish_step();
    arrivals += reducer.last_step().last_rank >= 0;
    sgd.step(arena.params(), arena.grads());
  }
  return {{arena.params().begin(), arena.params().end()},
          {arena.grads().begin(), arena.grads().end()},
          reducer.buckets().size(),
          arrivals};
}

// One variant trained with overlap off and on: the replicas must be bitwise identical, overlap
// must change no bit, and the weights must lie within `tol` of `base`'s (named `base_name`).
struct OverlapPair {
  Trained off;
  double worst;  // distance to base, max over ranks
};
OverlapPair train_overlap_pair(cifar::testing::Engine& e, ParamArena& arena, SimpleCnn& net,
                               const std::vector<StepData>& data, Variant off, const Trained& base,
                               const std::string& base_name, double tol) {
  off.overlap = false;
  Variant on = off;
  on.overlap = true;
  const Trained t_off = train(e, arena, net, data, off), t_on = train(e, arena, net, data, on);
  const size_t want_arrivals = world_size() > 1 ? data.size() : 0;
  EXPECT_TRUE(all_ranks(t_on.arrivals == want_arrivals))
      << on.name() << ": " << t_on.arrivals << " of " << data.size() << " steps recorded their arrival check";
  const size_t diff = count_diff_from_rank0(t_off.params);
  report_local_failure(diff == 0, off.name() + ": " + std::to_string(diff) + " params differ from rank 0's");
  EXPECT_TRUE(all_ranks(diff == 0)) << off.name() << ": replicas differ after " << kSteps << " steps";
  if (overlap_keeps_bits(off.strategy)) {
    EXPECT_TRUE(all_ranks(bits_equal(t_on.params, t_off.params))) << on.name() << " differs from " << off.name();
  } else {
    const size_t diff_on = count_diff_from_rank0(t_on.params);
    report_local_failure(diff_on == 0, on.name() + ": " + std::to_string(diff_on) + " params differ from rank 0's");
    EXPECT_TRUE(all_ranks(diff_on == 0)) << on.name() << ": replicas differ after " << kSteps << " steps";
    bool ok_on = true;
    std::string why_on;
    const double worst_on = max_over_ranks(compare_tensors(arena, t_on.params, base.params, tol, ok_on, why_on));
    report_local_failure(ok_on, on.name() + " vs " + base_name + ":" + why_on);
    EXPECT_TRUE(all_ranks(ok_on)) << on.name() << " vs " << base_name << ": worst " << worst_on << ", tolerance " << tol;
  }
  bool ok = true;
  std::string why;
  const double worst = max_over_ranks(compare_tensors(arena, t_off.params, base.params, tol, ok, why));
  report_local_failure(ok, off.name() + " vs " + base_name + ":" + why);
  EXPECT_TRUE(all_ranks(ok)) << off.name() << " vs " << base_name << ": worst " << worst << ", tolerance " << tol;
  return {t_off, worst};
}

// ---------------------------------------------------------------------------------------------

TEST_F(DataParallel, UnionBatchGradientEquivalence) {
  const int rank = world_rank(), n = world_size();
  const size_t global = kLocalBatch * static_cast<size_t>(n);
  const auto gx = cifar::testing::random_input(global, 77);
  const auto gy = cifar::testing::random_labels(global, 78);

  // The reference: one network of batch G over the whole global batch, on every rank.
  ParamArena ref_arena = cifar::testing::make_arena(kWeightSeed);
  SimpleCnn ref_net(e.eng, ref_arena, global);
  std::copy(gx.begin(), gx.end(), ref_net.input());
  ref_net.forward_backward(e.stream, gy.data(), global);
  const std::vector<float> want(ref_arena.grads().begin(), ref_arena.grads().end());

  // This rank's share of batch 0, as the sampler (shuffle off) deals it: positions r, r+N, ...
  const cifar::DistributedSampler sampler(global, n, rank, /*shuffle=*/false, /*seed=*/0, /*drop_last=*/false);
  const std::vector<size_t> idx = sampler.indices(0);
  bool share_ok = idx.size() == kLocalBatch;
  for (size_t k = 0; k < idx.size() && share_ok; ++k) share_ok = idx[k] == static_cast<size_t>(rank) + k * n;
  ASSERT_TRUE(all_ranks(share_ok)) << "sampler did not deal positions r, r+N, ... of the global batch";

  ParamArena arena = cifar::testing::make_arena(kWeightSeed);
  SimpleCnn net(e.eng, arena, kLocalBatch);
  std::vector<int32_t> labels(kLocalBatch);
  for (size_t k = 0; k < kLocalBatch; ++k) {
    std::copy_n(gx.begin() + static_cast<std::ptrdiff_t>(idx[k] * kImageFloats), kImageFloats,
                net.input() + k * kImageFloats);
    labels[k] = gy[idx[k]];
  }

  double worst_all = 0;
  for (const Variant& v : all_variants()) {
    GradientReducer reducer = make_reducer(arena, arena.grads(), v);
    // Poison the gradients: backward must overwrite every element (it assigns, never adds).
    std::fill(arena.grads().begin(), arena.grads().end(), std::numeric_limits<float>::quiet_NaN());
    net.forward_backward(e.stream, labels.data(), kLocalBatch,
                         [&reducer](size_t ready) { reducer.on_grads_ready(ready); });
    reducer.finish_step();

    bool ok = true;
    std::string why;
    const double worst = compare_tensors(arena, arena.grads(), want, kGradTol, ok, why);
    report_local_failure(ok, v.name() + ": averaged gradient differs from the batch-" + std::to_string(global) +
                                 " gradient:" + why);
    const bool same = same_bits_as_rank0(arena.grads());
    const double worst_ranks = max_over_ranks(worst);
    worst_all = std::max(worst_all, worst_ranks);
    EXPECT_TRUE(all_ranks(ok)) << v.name() << ": averaged gradient differs from the union batch's (worst "
                               << worst_ranks << " of max(1, max|want|), tolerance " << kGradTol
                               << "); details on each failing rank's stderr";
    EXPECT_TRUE(all_ranks(same)) << v.name() << ": ranks hold different averaged gradients";
    print_rank0(v.name() + " (" + std::to_string(reducer.buckets().size()) + " buckets): grad worst " +
                fmt(worst_ranks) + " of max(1,max|want|)");
  }
  print_rank0("N=" + std::to_string(n) + " union-batch gradient: worst max|err|/max(1,max|want|) over all variants, "
              "tensors and ranks = " + fmt(worst_all) + " (tolerance " + fmt(kGradTol) + ")");
}

TEST_F(DataParallel, ReplicasStayBitwiseIdentical) {
  const int n = world_size();
  const auto data = per_rank_data();
  ParamArena arena = cifar::testing::make_arena(kWeightSeed);
  SimpleCnn net(e.eng, arena, kLocalBatch);

  // Not vacuous: the ranks' local gradients do differ before the all-reduce.
  std::copy(data[0].x.begin(), data[0].x.end(), net.input());
  net.forward_backward(e.stream, data[0].y.data(), kLocalBatch);
  const bool local_differs = !same_bits_as_rank0(arena.grads());
  if (n > 1) EXPECT_FALSE(all_ranks(!local_differs)) << "the ranks' local gradients are identical: test is vacuous";

  for (const Variant& v : all_variants()) {
    const Trained t = train(e, arena, net, data, v);
    bool moved = false;  // the weights did change
    {
      ParamArena init = cifar::testing::make_arena(kWeightSeed);
      moved = !bits_equal(init.params(), t.params);
    }
    const size_t params_diff = count_diff_from_rank0(t.params);
    const size_t grads_diff = count_diff_from_rank0(t.grads);
    report_local_failure(params_diff == 0 && grads_diff == 0,
                         v.name() + ": " + std::to_string(params_diff) + " params and " + std::to_string(grads_diff) +
                             " averaged grads differ from rank 0's");
    EXPECT_TRUE(all_ranks(moved)) << v.name() << ": the parameters did not change in " << kSteps << " steps";
    EXPECT_TRUE(all_ranks(params_diff == 0)) << v.name() << ": parameters differ from rank 0's after " << kSteps
                                             << " steps (counts on each failing rank's stderr)";
    EXPECT_TRUE(all_ranks(grads_diff == 0)) << v.name() << ": last averaged gradients differ from rank 0's";
  }
  print_rank0("N=" + std::to_string(n) + ": parameters bitwise identical on all ranks after " +
              std::to_string(kSteps) + " steps, all " + std::to_string(all_variants().size()) + " variants");
}

TEST_F(DataParallel, StrategiesAgree) {
  const int n = world_size();
  const auto data = per_rank_data();
  ParamArena arena = cifar::testing::make_arena(kWeightSeed);
  SimpleCnn net(e.eng, arena, kLocalBatch);

  const Variant base_v{AllreduceStrategy::mpi, false, kDefaultBucketMb};
  const Trained base = train(e, arena, net, data, base_v);
  const auto variants = all_variants();
  std::vector<Trained> results;
  for (const Variant& v : variants) results.push_back(train(e, arena, net, data, v));

  double worst_all = 0;
  size_t bitwise_with_base = 0;
  for (size_t i = 0; i < variants.size(); ++i) {
    const Variant& v = variants[i];
    bool ok = true;
    std::string why;
    const double worst = compare_tensors(arena, results[i].params, base.params, kParamTol, ok, why);
    report_local_failure(ok, v.name() + " vs " + base_v.name() + ":" + why);
    const double worst_ranks = max_over_ranks(worst);
    worst_all = std::max(worst_all, worst_ranks);
    const bool same_as_base = all_ranks(bits_equal(results[i].params, base.params));
    bitwise_with_base += same_as_base;
    EXPECT_TRUE(all_ranks(ok)) << v.name() << " vs " << base_v.name() << ": worst " << worst_ranks
                               << " of max(1, max|want|), tolerance " << kParamTol;
    print_rank0(v.name() + " vs " + base_v.name() + ": params worst " + fmt(worst_ranks) +
                (same_as_base ? " (bitwise equal)" : ""));
    if (v.overlap && overlap_keeps_bits(v.strategy)) {  // all_variants() puts on right after off
      const Variant& off = variants[i - 1];
      ASSERT_FALSE(off.overlap);
      const bool same = bits_equal(results[i].params, results[i - 1].params) &&
                        bits_equal(results[i].grads, results[i - 1].grads);
      report_local_failure(same, v.name() + " and " + off.name() + " differ");
      EXPECT_TRUE(all_ranks(same)) << v.name() << " is not bitwise equal to " << off.name();
    }
  }
  print_rank0("N=" + std::to_string(n) + " strategies after " + std::to_string(kSteps) +
              " steps: worst max|err|/max(1,max|want|) = " + fmt(worst_all) + " (tolerance " + fmt(kParamTol) +
              "), " + std::to_string(bitwise_with_base) + "/" + std::to_string(variants.size()) +
              " variants bitwise equal to the baseline");
  if (n <= 2)  // one addition per element (or none): every order gives the same bits
    EXPECT_EQ(bitwise_with_base, variants.size()) << "at N <= 2 every strategy should give the same bits";
}

TEST_F(DataParallel, CompressedWireKeepsReplicasIdentical) {
  const int n = world_size();
  const auto data = per_rank_data();
  ParamArena arena = cifar::testing::make_arena(kWeightSeed);
  SimpleCnn net(e.eng, arena, kLocalBatch);
  const Trained base = train(e, arena, net, data, {AllreduceStrategy::mpi, false, kDefaultBucketMb});
  double worst_all = 0;
  for (AllreduceStrategy s : {AllreduceStrategy::naive, AllreduceStrategy::mpi, AllreduceStrategy::ring,
                              AllreduceStrategy::rhd})
    for (cifar::WireDtype wire : {cifar::WireDtype::bf16, cifar::WireDtype::fp16}) {
      const Variant off{s, false, kSmallBucketMb, wire};
      const OverlapPair p = train_overlap_pair(e, arena, net, data, off, base, "fp32", kCompressedTol);
      worst_all = std::max(worst_all, p.worst);
      if (n > 1)
        EXPECT_FALSE(all_ranks(bits_equal(p.off.params, base.params))) << off.name() << " equals fp32: not compressed?";
    }
  print_rank0("N=" + std::to_string(n) + " 16-bit wire after " + std::to_string(kSteps) +
              " steps: replicas bitwise identical; worst distance to fp32 " + fmt(worst_all) + " (tolerance " +
              fmt(kCompressedTol) + ")");
}

// The hierarchical ring and rhd on hosts drawn on this machine (2 ranks each): replicas stay
// bitwise identical, overlap changes no bit, and the weights stay within the strategies'
// tolerance of MPI_Allreduce's (the additions come in another order: a host's partial sums first).
TEST_F(DataParallel, HierarchicalRingKeepsReplicasIdentical) {
  const int n = world_size();
  if (n < 4 || n % 2 != 0) GTEST_SKIP() << "needs an even N >= 4 for 2 hosts of 2 or more ranks";
  const auto data = per_rank_data();
  ParamArena arena = cifar::testing::make_arena(kWeightSeed);
  SimpleCnn net(e.eng, arena, kLocalBatch);
  const Trained base = train(e, arena, net, data, {AllreduceStrategy::mpi, false, kDefaultBucketMb});
  for (AllreduceStrategy strategy : {AllreduceStrategy::ring, AllreduceStrategy::rhd}) {
    {
      GradientReducer probe(arena.grads(), plan_for(arena, {strategy, false, kSmallBucketMb}), strategy, false,
                            MPI_COMM_WORLD, cifar::WireDtype::fp32, cifar::RingLayout::hosts, world_rank() / 2);
      ASSERT_TRUE(all_ranks(probe.hierarchical())) << probe.describe();
      print_rank0(probe.describe());
    }
    for (double mb : {kDefaultBucketMb, kSmallBucketMb}) {
      Variant off{strategy, false, mb};
      off.per_host = 2;
      const OverlapPair p = train_overlap_pair(e, arena, net, data, off, base, "mpi", kParamTol);
      print_rank0(off.name() + " vs mpi: params worst " + fmt(p.worst) + "; replicas bitwise identical");
    }
    // 16-bit values on the links only: the cross-host step compresses, the hosts stay float32.
    for (cifar::WireDtype wire : {cifar::WireDtype::bf16, cifar::WireDtype::fp16}) {
      Variant off{strategy, false, kSmallBucketMb, wire};
      off.per_host = 2;
      const OverlapPair p = train_overlap_pair(e, arena, net, data, off, base, "fp32 mpi", kCompressedTol);
      EXPECT_FALSE(all_ranks(bits_equal(p.off.params, base.params))) << off.name() << " equals fp32: not compressed?";
      print_rank0(off.name() + " vs fp32 mpi: params worst " + fmt(p.worst) + "; replicas bitwise identical");
    }
  }
}

TEST_F(DataParallel, StepCommStatsAreConsistent) {
  const int n = world_size();
  const auto data = per_rank_data();
  ParamArena arena = cifar::testing::make_arena(kWeightSeed);
  SimpleCnn net(e.eng, arena, kLocalBatch);
  const size_t grad_bytes = arena.total_count() * sizeof(float);

  for (const Variant& v : all_variants()) {
    cifar::init_pytorch_default(arena, kWeightSeed);
    GradientReducer reducer = make_reducer(arena, arena.grads(), v);
    const auto& buckets = reducer.buckets();
    std::string why;
    auto check = [&why](bool c, const std::string& what) {
      if (!c) why += "\n    " + what;
    };

    // The plan: contiguous, covering the arena in order; the expected number of buckets.
    size_t next = 0;
    for (const auto& b : buckets) {
      check(b.offset == next && b.count > 0, "buckets do not tile the arena");
      next = b.offset + b.count;
    }
    check(next == arena.total_count(), "buckets do not cover the arena");
    const size_t want_buckets = v.strategy == AllreduceStrategy::naive ? 8 : v.bucket_mb == kDefaultBucketMb ? 1 : 3;
    check(buckets.size() == want_buckets,
          std::to_string(buckets.size()) + " buckets, want " + std::to_string(want_buckets));
    check(v.strategy != AllreduceStrategy::naive || buckets.size() == arena.specs().size(),
          "naive: not one bucket per tensor");

    for (int step = 0; step < 2; ++step) {  // twice: the stats are per step, not cumulative
      std::copy(data[step].x.begin(), data[step].x.end(), net.input());
      // Overlap on, several buckets, first step: hold backward 50 ms once bucket 0 is complete,
      // so bucket 0 is certainly started (by on_grads_ready) before backward returns.
      const bool hold = v.overlap && buckets.size() > 1 && step == 0;
      bool held = false;
      const double t_before = cifar::now_seconds();
      net.forward_backward(e.stream, data[step].y.data(), kLocalBatch, [&](size_t ready) {
        reducer.on_grads_ready(ready);
        if (hold && !held && ready >= buckets[0].offset + buckets[0].count) {
          held = true;
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
      });
      const double t_backward = cifar::now_seconds();
      reducer.finish_step();
      const double t_after = cifar::now_seconds();
      const cifar::StepCommStats& s = reducer.last_step();
      const auto& tm = reducer.bucket_timings();
      const std::string at = " (step " + std::to_string(step) + ")";

      check(s.calls == (n > 1 ? buckets.size() : 0),
            "calls " + std::to_string(s.calls) + ", want " + std::to_string(n > 1 ? buckets.size() : 0) + at);
      const size_t want_bytes = n > 1 ? grad_bytes : 0;  // one rank sends nothing
      check(s.bytes == want_bytes, "bytes " + std::to_string(s.bytes) + ", want " + std::to_string(want_bytes) + at);
      check(s.comm() >= 0 && s.wait >= 0, "negative comm() or wait" + at);
      check(s.first_start <= s.last_end, "first_start after last_end" + at);
      check(s.wait <= t_after - t_backward + 1e-9, "wait longer than finish_step" + at);
      check(tm.size() == buckets.size(), "one timing per bucket" + at);
      for (size_t k = 0; k < tm.size(); ++k) {
        check(tm[k].start <= tm[k].end, "bucket " + std::to_string(k) + " ends before it starts" + at);
        check(tm[k].start >= t_before && tm[k].end <= t_after, "bucket " + std::to_string(k) + " timed outside the step" + at);
        if (k > 0) check(tm[k].start >= tm[k - 1].end, "buckets overlap each other" + at);
      }
      if (!tm.empty()) {
        check(s.first_start == tm.front().start && s.last_end == tm.back().end, "stats do not match the timings" + at);
        if (!v.overlap)
          check(tm.front().start >= t_backward, "overlap off, yet bucket 0 started during backward" + at);
        if (hold)
          check(held && tm.front().start < t_backward,
                "overlap on, yet bucket 0 did not start before backward returned" + at);
      }
    }
    const bool ok = why.empty();
    report_local_failure(ok, v.name() + ":" + why);
    EXPECT_TRUE(all_ranks(ok)) << v.name() << ": inconsistent StepCommStats (details on each failing rank's stderr)";
    print_rank0(v.name() + ": " + std::to_string(buckets.size()) + " buckets, calls " +
                std::to_string(reducer.last_step().calls) + ", bytes " + std::to_string(reducer.last_step().bytes) +
                ", comm " + fmt(reducer.last_step().comm() * 1e3) + " ms, wait " +
                fmt(reducer.last_step().wait * 1e3) + " ms");
  }
}

}  // namespace

// --allreduce auto as the trainer runs it: a probed link model (the same numbers on every rank),
// buckets planned from ready points at the tensor boundaries, each bucket's all-reduce the least
// predicted; replicas bitwise identical, overlap changes no bit, within kParamTol of MPI's.
TEST_F(DataParallel, ProbedAutoPlanKeepsReplicasIdentical) {
  const int n = world_size();
  const auto data = per_rank_data();
  ParamArena arena = cifar::testing::make_arena(kWeightSeed);
  SimpleCnn net(e.eng, arena, kLocalBatch);
  const Trained base = train(e, arena, net, data, {AllreduceStrategy::mpi, false, kDefaultBucketMb});
  const auto candidates = cifar::auto_candidates();
  const cifar::LinkModel link =
      cifar::probe_link_model(candidates, cifar::WireDtype::fp32, cifar::RingLayout::hosts, MPI_COMM_WORLD);
  ASSERT_EQ(link.algorithms.size(), candidates.size());
  std::vector<float> numbers;  // as floats for same_bits_as_rank0 (alpha, beta > 1e-38 where nonzero)
  for (const auto& a : link.algorithms) numbers.push_back(float(a.cost.alpha)), numbers.push_back(float(a.cost.beta));
  EXPECT_TRUE(all_ranks(same_bits_as_rank0(numbers))) << "ranks fitted different link models";
  std::vector<cifar::ReadyPoint> ready;
  std::vector<cifar::TensorSpec> specs = arena.specs();
  std::sort(specs.begin(), specs.end(), [](const auto& a, const auto& b) { return a.offset < b.offset; });
  for (size_t i = 0; i < specs.size(); ++i) ready.push_back({specs[i].offset + specs[i].count, 1e-3 * double(i + 1)});
  std::vector<cifar::Bucket> buckets = cifar::plan_overlapped_buckets(ready, [&](size_t b) { return link.time(b); });
  std::vector<AllreduceStrategy> strategies;
  std::string plan;
  for (const auto& b : buckets) {
    strategies.push_back(link.algorithms[link.best(b.count * sizeof(float))].strategy);
    plan += " " + std::to_string(b.count) + ":" + cifar::to_string(strategies.back());
  }
  std::vector<float> results[2];
  for (bool overlap : {false, true}) {
    cifar::init_pytorch_default(arena, kWeightSeed);
    cifar::SgdMomentum sgd(arena.total_count(), kLr, kMomentum);
    GradientReducer reducer(arena.grads(), buckets, strategies, overlap, MPI_COMM_WORLD);
    for (const auto& d : data) {
      std::copy(d.x.begin(), d.x.end(), net.input());
      net.forward_backward(e.stream, d.y.data(), kLocalBatch, [&](size_t r) { reducer.on_grads_ready(r); });
      reducer.finish_step();
      sgd.step(arena.params(), arena.grads());
    }
    results[overlap].assign(arena.params().begin(), arena.params().end());
  }
  EXPECT_TRUE(all_ranks(count_diff_from_rank0(results[0]) == 0)) << "replicas differ under the auto plan" << plan;
  EXPECT_TRUE(all_ranks(count_diff_from_rank0(results[1]) == 0)) << "overlapped replicas differ" << plan;
  // The probe may pick MPI's all-reduce for a bucket, whose polled form may add in another order
  // from N = 3 on (overlap_keeps_bits): then overlap on must stay within the tolerance instead.
  bool ok = true;
  std::string why;
  if (std::all_of(strategies.begin(), strategies.end(), overlap_keeps_bits)) {
    EXPECT_TRUE(all_ranks(bits_equal(results[0], results[1]))) << "overlap changed bits under the auto plan" << plan;
  } else {
    compare_tensors(arena, results[1], results[0], kParamTol, ok, why);
    report_local_failure(ok, "auto plan, overlap on vs off:" + why);
    EXPECT_TRUE(all_ranks(ok)) << "overlap on vs off beyond tolerance under the auto plan" << plan;
  }
  const double worst = max_over_ranks(compare_tensors(arena, results[0], base.params, kParamTol, ok, why));
  report_local_failure(ok, "auto plan vs mpi:" + why);
  EXPECT_TRUE(all_ranks(ok)) << "auto plan vs mpi: worst " << worst;
  print_rank0("N=" + std::to_string(n) + " probed auto plan (floats:algorithm)" + plan + "; link " + link.summary() +
              "; vs mpi worst " + fmt(worst));
}
