#pragma once
// Local SGD's periodic model averaging, as PyTorch's post-local SGD (post_localSGD_hook with a
// PeriodicModelAverager): after a start step, each rank updates the weights with its own
// gradients (no gradient all-reduce) and momentum, and every `period` steps the ranks replace
// their weights with the average. Momentum stays per rank, never averaged (as PyTorch's).
//
// The all-reduce goes through the Allreduce interface (allreduce.hpp), so every algorithm and
// wire type works; averaging by 1/N happens here. With a 16-bit wire type the weights travel
// rounded, as gradients would.
#include <cstddef>
#include <span>
#include <vector>

#include "cifar_mpi/comm/allreduce.hpp"
#include "cifar_mpi/comm/gradient_reducer.hpp"

namespace cifar {

class PeriodicAverager {
 public:
  // Averages every `period` steps counted from `start` (global steps, 0-based): after steps
  // start + period - 1, start + 2 period - 1, ...
  PeriodicAverager(size_t period, size_t start) : period_(period), start_(start) {}

  // Whether the weights are averaged after global step `step`.
  bool due(size_t step) const { return step >= start_ && (step - start_ + 1) % period_ == 0; }
  // Collective: params becomes the ranks' average (`world` ranks on `algo`'s communicator).
  void average(std::span<float> params, Allreduce& algo, int world, StepCommStats& stats);

  size_t period() const { return period_; }
  size_t start() const { return start_; }

 private:
  size_t period_, start_;
  std::vector<float> scratch_;
};

}  // namespace cifar
