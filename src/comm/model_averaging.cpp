#include "cifar_mpi/comm/model_averaging.hpp"

#include "cifar_mpi/util/clock.hpp"

namespace cifar {

void PeriodicAverager::average(std::span<float> params, Allreduce& algo, int world, StepCommStats& stats) {
  stats = StepCommStats{};
  if (scratch_.empty()) scratch_.resize(std::max<size_t>(1, algo.scratch_floats(params.size())));
  stats.first_start = now_seconds();
  algo.start(params.data(), params.size(), scratch_.data());
  algo.wait();
  stats.last_end = now_seconds();
  const float inv_n = 1.0f / static_cast<float>(world);
  for (float& w : params) w *= inv_n;
  stats.calls = 1;
}

}  // namespace cifar
