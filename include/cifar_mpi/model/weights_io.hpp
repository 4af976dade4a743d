#pragma once
// Weights as HDF5 datasets named and shaped like PyTorch's state_dict ("conv1.weight"
// [32,3,3,3], ..., "fc2.bias" [10]; buffers such as "bn1.running_mean" too), so a model moves to or from PyTorch with h5py:
//   sd = {k: torch.tensor(f[k][()]) for k in f}; model.load_state_dict(sd)
#include <filesystem>

#include "cifar_mpi/model/param_arena.hpp"

namespace cifar {

// Written atomically (temporary file, then rename). Errors name the file.
void save_weights(const ParamArena& arena, const std::filesystem::path& path);
// Every tensor must be present with its exact shape; otherwise an Error naming file and tensor.
void load_weights(ParamArena& arena, const std::filesystem::path& path);

}  // namespace cifar
