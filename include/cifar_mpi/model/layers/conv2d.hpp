#pragma once
// 2-D convolution, stride 1, no padding (PyTorch nn.Conv2d(in, out, k)).
//   src     (B, C, H, W)            any layout
//   weight  (O, C, K, K)            arena, PyTorch OIHW
//   bias    (O)                     arena
//   dst     (B, O, H-K+1, W-K+1)    layout chosen by oneDNN
#include "cifar_mpi/model/layer.hpp"

namespace cifar {

class Conv2d : public Layer {
 public:
  // diff_src: the previous layer's diff_dst, or nullptr for the first layer (no data gradient).
  Conv2d(std::string name, const dnnl::engine& eng, dnnl::memory& src, dnnl::memory* diff_src,
         int out_channels, int kernel, float* weight, float* bias, float* dweight, float* dbias);
  std::string name() const override { return name_; }
  void forward(dnnl::stream& s) override;
  void backward(dnnl::stream& s) override;
  bool has_params() const override { return true; }

 private:
  std::string name_;
  dnnl::convolution_forward fwd_;
  dnnl::convolution_backward_weights bwd_weights_;
  std::optional<dnnl::convolution_backward_data> bwd_data_;
  LayoutBridge src_, weight_fwd_, weight_bwd_, dweight_, diff_src_;
  dnnl::memory bias_, dbias_;
};

}  // namespace cifar
