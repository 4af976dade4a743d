#pragma once
// SGD with momentum, exactly torch.optim.SGD's step (dampening 0, maximize off):
//   g' = g + wd * w                 coupled weight decay (L2 in the gradient), only when wd != 0
//   v  = mu * v + g'                (v starts at 0, so the first step has v = g')
//   d  = g' + mu * v  if Nesterov,  else d = v
//   w -= lr * d
// One flat loop over the parameter arena. With wd = 0 and Nesterov off the loop is the original
// two-line one, so results stay bitwise identical to those before weight decay existed.
// The lr may change before any step (set_lr), as a per-step schedule needs.
#include <span>
#include <vector>

namespace cifar {

struct SgdOptions {
  float lr = 0.01f;
  float momentum = 0.9f;
  float weight_decay = 0.0f;
  bool nesterov = false;  // torch requires momentum > 0 for it; so do we
};

class SgdMomentum {
 public:
  SgdMomentum(size_t count, float lr, float momentum) : SgdMomentum(count, SgdOptions{lr, momentum}) {}
  // Throws cifar::Error for Nesterov without momentum and for negative or non-finite values.
  SgdMomentum(size_t count, const SgdOptions& options);

  void step(std::span<float> params, std::span<const float> grads);
  void set_lr(float lr);
  float lr() const { return options_.lr; }
  const SgdOptions& options() const { return options_; }
  std::span<float> velocity() { return velocity_; }
  std::span<const float> velocity() const { return velocity_; }

 private:
  std::vector<float> velocity_;  // (count) momentum buffer, same layout as the arena
  SgdOptions options_;
};

}  // namespace cifar
