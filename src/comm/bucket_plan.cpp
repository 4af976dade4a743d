#include "cifar_mpi/comm/bucket_plan.hpp"

#include <algorithm>

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

}  // namespace cifar
