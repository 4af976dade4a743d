#include "cifar_mpi/comm/bucket_plan.hpp"

#include <algorithm>
#include <limits>

#include "cifar_mpi/util/error.hpp"

namespace cifar {

std::vector<Bucket> plan_buckets(const ParamArena& arena, size_t bucket_bytes, bool per_tensor) {
  std::vector<const TensorSpec*> backward_order;
  for (const auto& s : arena.specs()) backward_order.push_back(&s);
  std::sort(backward_order.begin(), backward_order.end(),
            [](const TensorSpec* a, const TensorSpec* b) { return a->offset < b->offset; });
  std::vector<Bucket> buckets;
  Bucket current;
  for (const TensorSpec* s : backward_order) {
    if (current.count == 0) current.offset = s->offset;
    current.count += s->count;
    if (per_tensor || current.count * sizeof(float) >= bucket_bytes) {
      buckets.push_back(current);
      current = Bucket{};
    }
  }
  if (current.count > 0) buckets.push_back(current);
  return buckets;
}

namespace {

// When the prefix [0, end) is final: the first ready point covering it.
double ready_time(std::span<const ReadyPoint> ready, size_t end) {
  for (const ReadyPoint& p : ready)
    if (p.floats >= end) return p.time;
  throw Error("bucket plan: a bucket ends past the last ready point");
}

}  // namespace

double predicted_end(std::span<const Bucket> buckets, std::span<const ReadyPoint> ready, const ReductionCost& cost) {
  double end = 0;
  for (const Bucket& b : buckets)
    end = std::max(end, ready_time(ready, b.offset + b.count)) + cost(b.count * sizeof(float));
  return end;
}

std::vector<Bucket> plan_overlapped_buckets(std::span<const ReadyPoint> ready, const ReductionCost& cost) {
  // Distinct boundaries (a layer without parameters repeats its predecessor's prefix: keep the
  // earliest time), led by 0.
  std::vector<ReadyPoint> p{ReadyPoint{0, 0}};
  for (const ReadyPoint& r : ready)
    if (r.floats > p.back().floats) p.push_back(r);
  if (p.size() < 2) throw Error("bucket plan: no gradients to plan");
  const size_t n = p.size();
  // g[b][j]: the least end of prefix j cut into exactly b buckets (a bucket count per table keeps
  // the fewest buckets exact on ties: a later max() can absorb an earlier difference).
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> g(n, std::vector<double>(n, inf));
  std::vector<std::vector<size_t>> from(n, std::vector<size_t>(n, 0));
  g[0][0] = 0;
  for (size_t b = 1; b < n; ++b)
    for (size_t j = b; j < n; ++j)
      for (size_t i = b - 1; i < j; ++i) {
        if (g[b - 1][i] == inf) continue;
        const double end = std::max(g[b - 1][i], p[j].time) + cost((p[j].floats - p[i].floats) * sizeof(float));
        if (end < g[b][j]) g[b][j] = end, from[b][j] = i;
      }
  size_t best = 1;
  for (size_t b = 2; b < n; ++b)
    if (g[b][n - 1] < g[best][n - 1]) best = b;
  std::vector<Bucket> out;
  for (size_t b = best, j = n - 1; b > 0; j = from[b][j], --b)
    out.push_back({p[from[b][j]].floats, p[j].floats - p[from[b][j]].floats});
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<Bucket> plan_robust_buckets(std::span<const ReadyPoint> ready, const ReductionCost& cost,
                                        double tolerance) {
  std::vector<Bucket> best = plan_overlapped_buckets(ready, cost);
  const double best_end = predicted_end(best, ready, cost);
  for (double m : kRobustCostFactors) {
    std::vector<Bucket> slower = plan_overlapped_buckets(ready, [&](size_t bytes) { return m * cost(bytes); });
    if (predicted_end(slower, ready, cost) <= best_end + tolerance) return slower;
  }
  return best;
}

}  // namespace cifar
