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
//
// With a `sync` function (--sync-bn, PyTorch's SyncBatchNorm) it normalises over the global batch:
//   forward:  oneDNN's pass gives this rank's mean and variance; sync sums n, n mean and
//             n (var + mean^2) per channel over the ranks, and a second pass normalises with the
//             global mean and biased variance (oneDNN's use_global_stats); the running statistics
//             take the global ones (unbiased with the global n), the same on every rank.
//   backward: oneDNN's pass with those statistics as constants gives dx0 = weight/sigma dy and this
//             rank's sums S1 = sum dy, S2 = sum dy xhat (the bias and weight gradients, left local:
//             the reducer averages them as DDP does); sync sums S1 and S2 over the ranks, and
//             dx = dx0 - weight/sigma (S1 + xhat S2) / n_global, per element an affine function of
//             x: an inference BatchNorm pass computes x * b + a, a binary pass adds it into dx.
// Every rank gets the same statistics, so a layer over a rank's share gives that share of what one
// layer over the union batch gives (tests/unit/test_sync_batch_norm.cpp).
#include <functional>
#include <span>
#include <vector>

#include "cifar_mpi/model/layer.hpp"

namespace cifar {

class BatchNorm : public Layer {
 public:
  static constexpr float kEpsilon = 1e-5f;
  static constexpr double kMomentum = 0.1;

  // diff_src: the previous layer's diff_dst (a BatchNorm is never a network's first layer).
  // sync: empty, or the sum across replicas (NetworkOptions::sum_across_replicas).
  BatchNorm(std::string name, const dnnl::engine& eng, dnnl::memory& src, dnnl::memory& diff_src, float* weight,
            float* bias, float* dweight, float* dbias, float* running_mean, float* running_var, bool relu,
            std::function<void(std::span<double>)> sync = {});
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
  void update_running_statistics(const float* mean, const float* var, double count);
  void sync_forward(dnnl::stream& s);
  void sync_backward(dnnl::stream& s);

  dnnl::memory mean_, variance_;  // this batch's, from the training forward pass
  BoundPrimitive training_, inference_, backward_;
  // --sync-bn only:
  std::function<void(std::span<double>)> sync_;
  const float* weight_ = nullptr;
  const float* dweight_ = nullptr;
  const float* dbias_ = nullptr;
  dnnl::memory global_mean_, global_variance_;  // the global batch's (biased variance)
  dnnl::memory scale_, shift_;                  // dx's correction: x * scale + shift, per channel
  BoundPrimitive global_training_, global_backward_, affine_, add_;
  double global_count_ = 0;
  std::vector<double> sums_;  // what sync sums
};

}  // namespace cifar
