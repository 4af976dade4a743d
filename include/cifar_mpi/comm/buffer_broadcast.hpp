#pragma once
// The model's buffers (BatchNorm's running mean and variance) follow rank 0's, as under PyTorch
// DDP's broadcast_buffers: each rank normalises over its own share of the batch and so updates
// its running statistics with its own batch statistics; rank 0's are then everyone's. Called
// after the initial weights and after every step's update, so the replicas are identical,
// buffers included, whenever anything reads them (evaluation, checkpoints, weights files).
// PyTorch broadcasts before each forward instead: the same values, since training-mode
// BatchNorm never reads them.
#include <mpi.h>

#include "cifar_mpi/model/param_arena.hpp"

namespace cifar {

// One MPI_Bcast of every buffer from rank 0 (nothing when the model has none).
void broadcast_buffers(ParamArena& arena, MPI_Comm comm);

}  // namespace cifar
