// The set-up's reduction plan (reduction_plan.hpp): buckets and per-bucket all-reduce.
#include "reduction_plan.hpp"

#include <algorithm>
#include <limits>
#include <sstream>

#include "cifar_mpi/app/checkpoint.hpp"
#include "cifar_mpi/comm/gradient_reducer.hpp"
#include "cifar_mpi/util/clock.hpp"
#include "cifar_mpi/util/error.hpp"
#include "cifar_mpi/util/mpi_check.hpp"
#include "cifar_mpi/util/mpi_text.hpp"

namespace cifar {

namespace {

constexpr int kTimedPasses = 3;  // forward + backward; the minimum per layer
// A reduction that runs beside backward takes longer than on an idle machine: it advances only at
// backward's pauses (gradient_reducer.hpp), and the kernel's network stack shares the cores with
// backward (docs/results.md, the link sweep, with a communication thread: 19.1 ms against 10.6 ms
// at 1 Gbit/s, 1.8x). The plan assumes 2x. Even so, starting fc1's megabyte after conv2's
// backward often predicts the same end as starting it at once (both finish within conv1's
// backward), but only the early start survives the gaps between backward's pauses: ties go to the
// plan that stays best with slower reductions (plan_robust_buckets), among plans within a
// hundredth of backward's time of the best.
constexpr double kOverlapSlowdown = 2.0;
constexpr double kPlanTolerance = 0.01;  // of backward's time

std::string asked(const Config& cfg) {
  return to_string(cfg.allreduce) + "/" + (cfg.bucket_mb == 0 ? std::string("auto") : std::to_string(cfg.bucket_mb));
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, sep)) out.push_back(item);
  return out;
}

// When backward makes each prefix of the arena final, seconds after backward began: the minimum
// of kTimedPasses passes on each rank, then the slowest rank's (the same numbers on every rank).
std::vector<ReadyPoint> time_backward(Network& net, ParamArena& arena, dnnl::stream& stream, MPI_Comm comm) {
  std::vector<int32_t> labels(net.batch(), 0);
  std::fill_n(net.input(), net.batch() * Network::kInputChannels * Network::kInputSide * Network::kInputSide,
              0.5f);
  std::vector<ReadyPoint> best;
  // Training-mode passes update the running statistics: these timing passes must leave no trace.
  const std::vector<float> buffers(arena.buffers().begin(), arena.buffers().end());
  for (int pass = 0; pass < kTimedPasses; ++pass) {
    std::vector<ReadyPoint> points;
    net.forward_backward(stream, labels.data(), net.batch(), [&](size_t ready) { points.push_back({ready, now_seconds()}); });
    double begin = std::numeric_limits<double>::infinity();
    for (const auto& s : net.backward_spans()) begin = std::min(begin, s.begin);
    for (auto& p : points) p.time -= begin;
    if (best.empty()) best = points;
    for (size_t i = 0; i < best.size() && i < points.size(); ++i) best[i].time = std::min(best[i].time, points[i].time);
  }
  std::copy(buffers.begin(), buffers.end(), arena.buffers().begin());
  std::vector<double> t(best.size());
  for (size_t i = 0; i < t.size(); ++i) t[i] = best[i].time;
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, t.data(), static_cast<int>(t.size()), MPI_DOUBLE, MPI_MAX, comm));
  for (size_t i = 0; i < t.size(); ++i) best[i].time = t[i];
  return best;
}

// The link model of the candidates: probed, or the --link-model file's (every candidate must be
// in it).
LinkModel link_for(const Config& cfg, const std::optional<LinkModel>& link_file,
                   std::span<const AllreduceStrategy> candidates, MPI_Comm comm) {
  if (!link_file) return probe_link_model(candidates, cfg.wire_dtype, cfg.ring_layout, comm);
  const LinkModel& file = *link_file;
  LinkModel m;
  for (AllreduceStrategy c : candidates) {
    const auto it = std::find_if(file.algorithms.begin(), file.algorithms.end(),
                                 [&](const AlgorithmCost& a) { return a.strategy == c; });
    if (it == file.algorithms.end())
      throw Error("--link-model " + cfg.link_model + ": no line for " + to_string(c) + " (allreduce_bench --fit-out "
                  "writes every algorithm it ran)");
    m.algorithms.push_back(*it);
  }
  return m;
}

// The buckets of a plan without a checkpoint to follow.
void plan_buckets_of(ReductionPlan& plan, const Config& cfg, ParamArena& arena, Network& net,
                     dnnl::stream& stream, MPI_Comm comm, int world) {
  const bool per_tensor = cfg.allreduce == AllreduceStrategy::naive;
  if (cfg.bucket_mb > 0 || per_tensor) {
    plan.buckets = plan_buckets(arena, static_cast<size_t>(cfg.bucket_mb * 1e6), per_tensor);
    return;
  }
  // auto: one bucket unless overlap can hide the splits' latency terms behind backward.
  if (!cfg.overlap || world == 1) {
    plan.buckets = {Bucket{0, arena.total_count()}};
    return;
  }
  const double t0 = now_seconds();
  plan.ready = time_backward(net, arena, stream, comm);
  plan.timing_seconds = now_seconds() - t0;
  const LinkModel& link = *plan.link;
  plan.buckets = plan_robust_buckets(
      plan.ready, [&](size_t bytes) { return kOverlapSlowdown * link.time(bytes); },
      kPlanTolerance * plan.ready.back().time);
}

}  // namespace

std::string ReductionPlan::text(int world, const Config& cfg) const {
  std::string s = "world=" + std::to_string(world) + ";asked=" + asked(cfg) + ";buckets=";
  for (size_t k = 0; k < buckets.size(); ++k)
    s += (k ? "," : "") + std::to_string(buckets[k].offset) + ":" + std::to_string(buckets[k].count);
  s += ";strategies=";
  for (size_t k = 0; k < strategies.size(); ++k) s += (k ? "," : "") + to_string(strategies[k]);
  return s;
}

std::optional<ReductionPlan> ReductionPlan::reusable(const std::string& text, int world, const Config& cfg,
                                                     size_t total) {
  const auto parts = split(text, ';');
  if (parts.size() != 4 || parts[0] != "world=" + std::to_string(world) || parts[1] != "asked=" + asked(cfg))
    return std::nullopt;
  ReductionPlan p;
  p.source = "checkpoint";
  size_t end = 0;
  try {
    for (const auto& b : split(parts[2].substr(parts[2].find('=') + 1), ',')) {
      const auto colon = b.find(':');
      p.buckets.push_back({std::stoul(b.substr(0, colon)), std::stoul(b.substr(colon + 1))});
      if (p.buckets.back().offset != end) return std::nullopt;
      end += p.buckets.back().count;
    }
  } catch (const std::logic_error&) {
    return std::nullopt;
  }
  for (const auto& s : split(parts[3].substr(parts[3].find('=') + 1), ',')) {
    const auto a = strategy_from_string(s);
    if (!a || *a == AllreduceStrategy::auto_) return std::nullopt;
    p.strategies.push_back(*a);
  }
  if (end != total || p.strategies.size() != p.buckets.size()) return std::nullopt;
  return p;
}

ReductionPlan plan_reduction(const Config& cfg, const std::optional<LinkModel>& link_file, ParamArena& arena,
                             Network& net, dnnl::stream& stream, MPI_Comm comm, bool root) {
  int world = 1;
  MPI_CHECK(MPI_Comm_size(comm, &world));
  if (!cfg.resume.empty()) {  // the checkpoint's order of sums, if it was planned for this run's shape
    const std::string saved = broadcast_text(root ? read_reduction_plan(cfg.resume) : std::string(), 0, comm);
    if (auto p = ReductionPlan::reusable(saved, world, cfg, arena.total_count())) return *p;
  }
  const double t0 = now_seconds();
  ReductionPlan plan;
  plan.source = "fixed";
  const bool auto_algo = cfg.allreduce == AllreduceStrategy::auto_;
  const bool auto_buckets = cfg.bucket_mb == 0 && cfg.allreduce != AllreduceStrategy::naive;
  if (world > 1 && (auto_algo || (auto_buckets && cfg.overlap))) {
    const std::vector<AllreduceStrategy> candidates =
        auto_algo ? auto_candidates() : std::vector<AllreduceStrategy>{cfg.allreduce};
    plan.link = link_for(cfg, link_file, candidates, comm);
    plan.probe_seconds = now_seconds() - t0;
  }
  plan_buckets_of(plan, cfg, arena, net, stream, comm, world);
  if (auto_buckets) plan.source = "planned";
  for (const Bucket& b : plan.buckets)
    plan.strategies.push_back(!auto_algo ? cfg.allreduce
                              : plan.link ? plan.link->algorithms[plan.link->best(b.count * sizeof(float))].strategy
                                          : AllreduceStrategy::mpi);  // one rank: nothing is reduced
  // Rank 0's plan is everyone's (the inputs were agreed already; this makes it so by construction).
  const std::string mine = plan.text(world, cfg);
  const auto agreed = ReductionPlan::reusable(broadcast_text(mine, 0, comm), world, cfg, arena.total_count());
  if (!agreed) throw Error("reduction plan: rank 0's plan does not fit this rank's model");
  plan.buckets = agreed->buckets, plan.strategies = agreed->strategies;
  return plan;
}

}  // namespace cifar
