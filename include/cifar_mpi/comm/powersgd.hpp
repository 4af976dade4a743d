#pragma once
// PowerSGD (Vogels, Karimireddy and Jaggi, 2019): averages the gradient arena across the ranks
// sending low-rank factors of each weight matrix instead of the matrix, as PyTorch's
// powerSGD_hook does (torch/distributed/algorithms/ddp_comm_hooks/powerSGD_hook.py):
//
//   each weight gradient viewed as a matrix M (rows = dim 0; a conv weight is out x in*kh*kw)
//   M += E                          error feedback: what earlier steps' approximations left out
//   Q: orthogonalised (random and seeded the same on every rank the first time, then the last
//      step's Q: warm start)
//   P = M Q;  all-reduce P;  orthogonalise P
//   Q = M^T P;  all-reduce Q;  Q /= N
//   M ~ P Q^T;  E = (M + E) - P Q^T  (local to the rank)
//
// Tensors not worth compressing go uncompressed: vectors (biases), and matrices whose rate
// rows*cols / ((rows + cols) * rank) is not above min_compression_rate (PyTorch's rule, default 2).
// They travel in the same all-reduce as P (PyTorch sends them in one of their own before it):
// a step is two dependent all-reduces, not three. A rank above a matrix's min(rows, cols) is
// clamped to it.
//
// Two differences from the hook, neither changing the average: error feedback covers the
// compressed matrices only (the hook keeps an "error" for uncompressed tensors too, the rank's
// deviation from the average, whose mean over the ranks is zero), and orthogonalisation is
// Gram-Schmidt at every rank (the hook takes QR above rank 2; the same span, possibly other signs).
// Epsilon is the hook's default, 0; a column that is all zeros stays zeros (the hook's intent
// when it catches a division by zero) instead of becoming NaN.
//
// The all-reduces go through the Allreduce interface (allreduce.hpp), so every algorithm and wire
// type works; averaging by 1/N happens here, once, as in the gradient reducer.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cifar_mpi/comm/allreduce.hpp"
#include "cifar_mpi/comm/gradient_reducer.hpp"
#include "cifar_mpi/model/param_arena.hpp"

namespace cifar {

struct PowerSgdOptions {
  size_t rank = 4;                    // --compress-rank
  double min_compression_rate = 2.0;  // compress a matrix only above this rate (0: every matrix)
  uint64_t seed = 0;                  // Q's first values (the same on every rank)
};

// One compressed tensor: where it lies in the arena, its matrix view and where its factors and
// error live in PowerSgd's buffers.
struct CompressedMatrix {
  std::string name;
  size_t offset = 0;  // into the arena (floats)
  size_t rows = 0, cols = 0, rank = 0;
  size_t p_offset = 0, q_offset = 0, e_offset = 0;  // into p, q, error
};

class PowerSgd {
 public:
  // Which tensors are compressed, the buffers, Q's first values. No communication.
  PowerSgd(const std::vector<TensorSpec>& specs, PowerSgdOptions options);

  // Collective over the communicator `algo` runs on (`world` ranks): replaces grads (the arena's)
  // with the compressed average. Two all-reduces (uncompressed tensors + P, then Q); their span
  // and volume go to `stats`.
  void reduce(std::span<float> grads, Allreduce& algo, int world, StepCommStats& stats);

  const std::vector<CompressedMatrix>& matrices() const { return matrices_; }
  // Floats each rank sends into the all-reduces per step (uncompressed + P + Q).
  size_t floats_per_step() const { return uncompressed_floats_ + p_.size() + q_.size(); }
  size_t uncompressed_floats() const { return uncompressed_floats_; }

  // State a resumed run needs (checkpoint): Q (the same on every rank; drawn from the seed at
  // construction, then each step's) and this rank's error.
  std::span<float> q() { return q_; }
  std::span<float> error() { return error_; }
  std::span<const float> q() const { return q_; }
  std::span<const float> error() const { return error_; }

 private:
  PowerSgdOptions options_;
  std::vector<CompressedMatrix> matrices_;
  std::vector<std::pair<size_t, size_t>> uncompressed_;  // (arena offset, count)
  size_t uncompressed_floats_ = 0;
  std::vector<float> p_, q_, error_;
  std::vector<float> send_;     // uncompressed values, then every P: the first all-reduce
  std::vector<float> scratch_;  // the all-reduce's, for the larger of the two
};

// The pieces, for tests and the reference. Row-major matrices.
// Gram-Schmidt on the columns of a (rows x cols) matrix, in place (float values, double sums).
void orthogonalize_columns(float* a, size_t rows, size_t cols);
// The rank PowerSGD uses for a rows x cols matrix asked for `rank`, and whether it compresses it.
size_t clamped_rank(size_t rows, size_t cols, size_t rank);
bool worth_compressing(size_t rows, size_t cols, size_t rank, double min_compression_rate);

}  // namespace cifar
