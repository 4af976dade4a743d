#pragma once
// SGD with momentum, PyTorch's semantics (dampening 0, no Nesterov, no weight decay):
//   v = mu * v + g      (v starts at 0, so the first step has v = g)
//   w -= lr * v
// One flat loop over the parameter arena.
#include <span>
#include <vector>

namespace cifar {

class SgdMomentum {
 public:
  SgdMomentum(size_t count, float lr, float momentum) : velocity_(count, 0.0f), lr_(lr), momentum_(momentum) {}
  void step(std::span<float> params, std::span<const float> grads);
  std::span<float> velocity() { return velocity_; }
  std::span<const float> velocity() const { return velocity_; }

 private:
  std::vector<float> velocity_;
  float lr_, momentum_;
};

}  // namespace cifar
