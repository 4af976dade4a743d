#pragma once
// Checkpoints: everything needed to continue a run as if it had never stopped.
//   weights/<name>   parameters (PyTorch state_dict names and shapes)
//   momentum/<name>  SGD momentum buffers, same names
//   attributes       epoch and step to continue from, the global step, and the training-defining
//                    configuration (batch, lr, momentum, seed, shuffling, world size, ...)
// The sampler needs no saved state: an epoch's order is a pure function of (seed, epoch), so
// (epoch, step) is its whole position; the model has no other random state.
// Written atomically (temporary file, then rename): a kill at any moment leaves the previous
// good checkpoint.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "cifar_mpi/app/config.hpp"
#include "cifar_mpi/model/param_arena.hpp"

namespace cifar {

struct CheckpointPosition {
  int epoch = 0;            // 0-based epoch to continue in
  size_t step = 0;          // steps of that epoch already done
  size_t global_step = 0;   // steps done in the whole run
};

// The configuration items a resumed run must share with the checkpoint (name, value).
// `hierarchical_ring`: the ring all-reduce runs hierarchically (GradientReducer::hierarchical()),
// which adds its sums in another order; recorded as ring_layout = hierarchical | flat (what ran,
// not what was asked: on one host both give the same bits). Checkpoints from before the key
// existed read as flat, which is what they ran.
// With --global-batch the identity is elastic: it holds global_batch instead of world_size and
// the per-rank batch_size, and leaves out the kBitwise options (threads, allreduce, bucket_mb,
// ring_layout), so the run resumes on any N' that divides the global batch, with the same samples
// in the same order (see DistributedSampler). Every other checkpoint records global_batch too
// (world_size x batch_size; derived so for checkpoints from before the key), so it resumes
// elastically as well.
std::vector<std::pair<std::string, std::string>> resume_identity(const Config& cfg, int world_size,
                                                                 bool hierarchical_ring = false);

// More float datasets a checkpoint may carry (name, values): PowerSGD's state (powersgd/...).
using CheckpointExtras = std::vector<std::pair<std::string, std::vector<float>>>;

// reduction_plan: the buckets and per-bucket all-reduce that ran (attribute reduction_plan; see
// src/app/reduction_plan.hpp), which a resumed run on as many ranks reuses for the same bits.
void save_checkpoint(const std::filesystem::path& path, const ParamArena& arena, std::span<const float> momentum,
                     const CheckpointPosition& pos, const std::vector<std::pair<std::string, std::string>>& identity,
                     const std::string& reduction_plan = {}, const CheckpointExtras& extras = {});

// How many values extra dataset `name` of a checkpoint holds; 0 when the file has none.
size_t checkpoint_extra_count(const std::filesystem::path& path, const std::string& name);

// Extra dataset `name` of a checkpoint, which must hold `count` floats; empty when the file has
// none (a checkpoint from a run without it). Throws cifar::Error naming file and dataset otherwise.
std::vector<float> read_checkpoint_extra(const std::filesystem::path& path, const std::string& name, size_t count);

// The checkpoint's reduction_plan attribute; "" when the file has none (older checkpoints) or
// cannot be read (load_checkpoint reports that).
std::string read_reduction_plan(const std::filesystem::path& path);

// Loads weights and momentum; throws cifar::Error naming the file and the reason when the
// checkpoint is unreadable, from another model, or its identity differs (naming the key and both
// values).
CheckpointPosition load_checkpoint(const std::filesystem::path& path, ParamArena& arena, std::span<float> momentum,
                                   const std::vector<std::pair<std::string, std::string>>& identity);

}  // namespace cifar
