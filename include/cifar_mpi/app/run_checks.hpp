#pragma once
// Checks that keep a run from going wrong quietly:
//  * check_config_agreement: at start-up every rank must hold the same configuration (a rank
//    started with other options would train something else, or wait forever in a collective);
//  * find_non_finite / tensor_at: the per-step NaN/Inf scan of the loss, gradients and weights
//    (src/app/train_step.cpp), which names the tensor by its PyTorch state_dict key.
// A failure that every rank of the communicator detects together is thrown as CollectiveError:
// the program prints it once (rank 0) and every rank exits 1 without MPI_Abort.
#include <mpi.h>

#include <cstddef>
#include <span>
#include <string>

#include "cifar_mpi/app/config.hpp"
#include "cifar_mpi/model/param_arena.hpp"
#include "cifar_mpi/util/error.hpp"

namespace cifar {

// Thrown by every rank alike, with the same message (src/main.cpp prints it on rank 0 only).
struct CollectiveError : Error {
  using Error::Error;
};

// Collective. Compares a hash of the agreed options (the kAgreed rows of config_options()) across
// the ranks; on a difference rank 0 learns the first differing rank's values and every rank
// throws CollectiveError naming the keys, e.g.
//   configuration differs between ranks: rank 1 has lr = 0.02, rank 0 has lr = 0.01
// Not compared, as they may legitimately differ: metrics (only rank 0 writes it; the program
// fills in a default on rank 0 alone), config_file (where the values came from) and data_dir
// (node-local copies of the data set; run_training checks that the sets have the same size).
// `cfg` is null on a rank that was asked for --help (that must agree too).
void check_config_agreement(const Config* cfg, MPI_Comm comm);

// Collective. A bad option or config file fails on every rank alike; `error` is this rank's
// message ("" if it parsed). Every rank failed: throws CollectiveError with rank 0's message (said
// once, not N times with an abort banner). Some failed: they print their own line naming the rank
// and every rank throws PartialError (exit 1 with nothing more said). None failed: returns.
void agree_on_parse_error(const std::string& error, MPI_Comm comm);

// Thrown where a set-up failure was already printed by the ranks that had it.
struct PartialError : CollectiveError {
  using CollectiveError::CollectiveError;
};

// Index of the first NaN or +-Inf in `v`, or v.size() if every value is finite. One pass that
// the compiler vectorises (~0.05 ms for the model's 1.26 MB of gradients).
size_t find_non_finite(std::span<const float> v);

// The tensor that holds element `offset` of the arena's flat parameter/gradient layout.
const TensorSpec& tensor_at(const ParamArena& arena, size_t offset);

}  // namespace cifar
