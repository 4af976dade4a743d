#include "cifar_mpi/optim/sgd_momentum.hpp"

#include "cifar_mpi/util/error.hpp"

namespace cifar {

void SgdMomentum::step(std::span<float> params, std::span<const float> grads) {
  if (params.size() != velocity_.size() || grads.size() != velocity_.size())
    throw Error("SgdMomentum::step: parameter count does not match the optimizer's");
  float* __restrict w = params.data();
  const float* __restrict g = grads.data();
  float* __restrict v = velocity_.data();
  const float lr = lr_, mu = momentum_;
  const size_t n = velocity_.size();
#pragma omp simd
  for (size_t i = 0; i < n; ++i) {
    v[i] = mu * v[i] + g[i];
    w[i] -= lr * v[i];
  }
}

}  // namespace cifar
