#pragma once
// Gradient buckets: contiguous (offset, count) ranges of the gradient arena, fixed at start-up in
// backward order. Tensors are never split: a bucket closes once it holds at least `bucket_bytes`,
// so a tensor larger than the cap gets a bucket of its own. With `per_tensor` every tensor is its
// own bucket (the naive strategy's one all-reduce per parameter tensor).
#include <cstddef>
#include <vector>

#include "cifar_mpi/model/param_arena.hpp"

namespace cifar {

struct Bucket {
  size_t offset = 0;  // floats into the gradient arena
  size_t count = 0;
};

std::vector<Bucket> plan_buckets(const ParamArena& arena, size_t bucket_bytes, bool per_tensor);

}  // namespace cifar
