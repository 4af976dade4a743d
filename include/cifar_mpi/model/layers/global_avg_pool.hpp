#pragma once
// The mean of each channel over the whole image (PyTorch F.avg_pool2d(x, x.size(3)), or
// nn.AdaptiveAvgPool2d(1)): (B, C, H, W) -> (B, C, 1, 1), which an InnerProduct reads as (B, C).
//   src  any layout;  dst  layout chosen by oneDNN
// Backward spreads each gradient evenly over its H x W inputs (=).
#include "cifar_mpi/model/layer.hpp"

namespace cifar {

class GlobalAvgPool : public Layer {
 public:
  GlobalAvgPool(std::string name, const dnnl::engine& eng, dnnl::memory& src, dnnl::memory& diff_src);
  std::string name() const override { return name_; }
  void forward(dnnl::stream& s) override { fwd_.execute(s); }
  void backward(dnnl::stream& s) override { bwd_.execute(s); }

 private:
  std::string name_;
  BoundPrimitive fwd_, bwd_;
};

}  // namespace cifar
