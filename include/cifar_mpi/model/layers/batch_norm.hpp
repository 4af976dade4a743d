#pragma once
// Batch normalisation over (B, H, W) per channel, PyTorch nn.BatchNorm2d(C) (eps 1e-5, momentum
// 0.1), optionally followed by ReLU in the same oneDNN pass (fuse_norm_relu).
//   training:  y = weight * (x - mean_B) / sqrt(var_B + eps) + bias, with this batch's mean and
//              biased variance; then, as PyTorch, in double precision:
//              running_mean = 0.9 running_mean + 0.1 mean_B
//              running_var  = 0.9 running_var  + 0.1 var_B * n / (n - 1)   (n = B H W, unbiased)
//   inference: the running statistics in place of the batch's.
//   src = (B, C, H, W) in the previous layer's layout; dst and diff_src in the same layout
//   weight, bias (C): arena parameters; running_mean, running_var (C): arena buffers
// In data parallelism each rank normalises over its own share of the batch, as PyTorch DDP; the
// running statistics then follow rank 0's (comm/buffer_broadcast.hpp).
#include "cifar_mpi/model/layer.hpp"

namespace cifar {

class BatchNorm : public Layer {
 public:
  static constexpr float kEpsilon = 1e-5f;
  static constexpr double kMomentum = 0.1;

  // diff_src: the previous layer's diff_dst (a BatchNorm is never a network's first layer).
  BatchNorm(std::string name, const dnnl::engine& eng, dnnl::memory& src, dnnl::memory& diff_src, float* weight,
            float* bias, float* dweight, float* dbias, float* running_mean, float* running_var, bool relu);
  std::string name() const override { return name_; }
  void forward(dnnl::stream& s) override;
  void forward_inference(dnnl::stream& s) override;
  void backward(dnnl::stream& s) override;
  void backward_with_pauses(dnnl::stream& s, const BackwardPause& pause) override;
  bool has_params() const override { return true; }

 private:
  std::string name_;
  size_t channels_ = 0;
  double count_ = 0;  // n = B H W: the values behind each channel's statistics
  float* running_mean_;
  float* running_var_;
  const float* grads_end_;  // one past the weight's gradient (registered before the bias)
  dnnl::memory mean_, variance_;  // this batch's, from the training forward pass
  BoundPrimitive training_, inference_, backward_;
};

}  // namespace cifar
