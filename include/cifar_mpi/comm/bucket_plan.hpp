#pragma once
// Gradient buckets: contiguous (offset, count) ranges of the gradient arena, fixed at start-up in
// backward order. Tensors are never split.
//
// plan_buckets (--bucket-mb X): a bucket closes once it holds at least `bucket_bytes`, so a
// tensor larger than the cap gets a bucket of its own. With `per_tensor` every tensor is its own
// bucket (the naive strategy's one all-reduce per parameter tensor).
//
// plan_overlapped_buckets (--bucket-mb auto with --overlap on): from when backward makes each
// prefix of the arena final (measured at start-up) and a predicted cost per reduction (the fitted
// link, link_model.hpp), the boundaries that minimise the predicted end of the last reduction:
// bucket k can start once backward has produced its last tensor and once bucket k-1 is reduced
// (one communication thread, reductions one after another), and takes cost(bytes). A dynamic
// program over the boundaries and the bucket count: g(b, j) = min over i < j of
// max(g(b-1, i), ready_j) + cost(bytes(i, j)), exact because that expression never decreases in
// g(b-1, i); the answer is the fewest b of least g(b, L). O(L^3) for L layers with parameters.
//
// plan_robust_buckets: the model often ties. When a big early tensor's reduction can start at once
// or after the next slow layer and both finish before backward ends, both predict the same end, and
// the fewest buckets wins: the late start. But a reduction beside backward advances only at its
// pauses (gradient_reducer.hpp), which the model does not see, and the late start is the one that
// runs out of backward first. So among the plans the model cannot tell apart, take the one that
// stays best when every reduction takes longer: the plan for cost x m, for the largest m of
// kRobustCostFactors whose plan still ends within `tolerance` of the best under the true cost.
#include <cstddef>
#include <functional>
#include <span>
#include <vector>

#include "cifar_mpi/model/param_arena.hpp"

namespace cifar {

struct Bucket {
  size_t offset = 0;  // floats into the gradient arena
  size_t count = 0;
};

std::vector<Bucket> plan_buckets(const ParamArena& arena, size_t bucket_bytes, bool per_tensor);

// Backward has made arena floats [0, floats) final `time` seconds after it began. Points in
// increasing order of floats; the last one covers the whole arena. Boundaries fall only here.
struct ReadyPoint {
  size_t floats = 0;
  double time = 0;
};

// Predicted seconds of one reduction of `bytes` (float32 bytes of the bucket).
using ReductionCost = std::function<double(size_t bytes)>;

// When the last of `buckets` (in order, covering the arena) ends by the model above.
double predicted_end(std::span<const Bucket> buckets, std::span<const ReadyPoint> ready, const ReductionCost& cost);

// The boundaries of least predicted_end (fewest buckets on a tie). `ready` must be non-empty.
std::vector<Bucket> plan_overlapped_buckets(std::span<const ReadyPoint> ready, const ReductionCost& cost);

inline constexpr double kRobustCostFactors[] = {16.0, 8.0, 4.0, 2.0};
// A plan of least predicted_end (within `tolerance` seconds), robust to slower reductions (above).
std::vector<Bucket> plan_robust_buckets(std::span<const ReadyPoint> ready, const ReductionCost& cost,
                                        double tolerance);

}  // namespace cifar
