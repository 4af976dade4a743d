#include "cifar_mpi/model/softmax_cross_entropy.hpp"

#include <algorithm>
#include <cmath>

namespace cifar {

LossResult softmax_cross_entropy(const float* logits, const int32_t* labels, size_t batch, size_t classes,
                                 float* dlogits, size_t grad_scale_batch) {
  LossResult r;
  double loss_sum = 0;
  const float inv_scale = 1.0f / static_cast<float>(grad_scale_batch);
  for (size_t b = 0; b < batch; ++b) {
    const float* z = logits + b * classes;
    const size_t argmax = static_cast<size_t>(std::max_element(z, z + classes) - z);
    const float zmax = z[argmax];  // subtract the max so exp never overflows
    double denom = 0;
    for (size_t k = 0; k < classes; ++k) denom += std::exp(static_cast<double>(z[k] - zmax));
    const auto y = static_cast<size_t>(labels[b]);
    loss_sum += std::log(denom) - static_cast<double>(z[y] - zmax);
    r.correct += argmax == y;
    if (dlogits) {
      float* dz = dlogits + b * classes;
      for (size_t k = 0; k < classes; ++k) {
        const float p = static_cast<float>(std::exp(static_cast<double>(z[k] - zmax)) / denom);
        dz[k] = (p - (k == y ? 1.0f : 0.0f)) * inv_scale;
      }
    }
  }
  r.loss = loss_sum / static_cast<double>(batch);
  return r;
}

}  // namespace cifar
