#include "cifar_mpi/optim/sgd_momentum.hpp"

#include <cmath>
#include <string>

#include "cifar_mpi/util/error.hpp"

namespace cifar {

SgdMomentum::SgdMomentum(size_t count, const SgdOptions& options) : velocity_(count, 0.0f), options_(options) {
  set_lr(options.lr);
  if (!(std::isfinite(options.momentum) && options.momentum >= 0))
    throw Error("SGD: momentum " + std::to_string(options.momentum) + " must be >= 0");
  if (!(std::isfinite(options.weight_decay) && options.weight_decay >= 0))
    throw Error("SGD: weight decay " + std::to_string(options.weight_decay) + " must be >= 0");
  if (options.nesterov && options.momentum <= 0) throw Error("SGD: Nesterov momentum requires momentum > 0");
}

void SgdMomentum::set_lr(float lr) {
  if (!(std::isfinite(lr) && lr >= 0)) throw Error("SGD: lr " + std::to_string(lr) + " must be >= 0");
  options_.lr = lr;
}

void SgdMomentum::step(std::span<float> params, std::span<const float> grads) {
  if (params.size() != velocity_.size() || grads.size() != velocity_.size())
    throw Error("SgdMomentum::step: parameter count does not match the optimizer's");
  float* __restrict w = params.data();
  const float* __restrict g = grads.data();
  float* __restrict v = velocity_.data();
  const float lr = options_.lr, mu = options_.momentum, wd = options_.weight_decay;
  const size_t n = velocity_.size();
  // Separate loops rather than per-element branches: each stays a plain vectorised loop, and the
  // plain one keeps the exact operation order (and so the bits) of the original optimizer.
  if (wd == 0.0f && !options_.nesterov) {
#pragma omp simd
    for (size_t i = 0; i < n; ++i) {
      v[i] = mu * v[i] + g[i];
      w[i] -= lr * v[i];
    }
  } else if (!options_.nesterov) {
#pragma omp simd
    for (size_t i = 0; i < n; ++i) {
      const float gi = g[i] + wd * w[i];
      v[i] = mu * v[i] + gi;
      w[i] -= lr * v[i];
    }
  } else {
#pragma omp simd
    for (size_t i = 0; i < n; ++i) {
      const float gi = g[i] + wd * w[i];
      v[i] = mu * v[i] + gi;
      w[i] -= lr * (gi + mu * v[i]);
    }
  }
}

}  // namespace cifar
