#pragma once
// Max pooling 2x2, stride 2, floor mode (PyTorch nn.MaxPool2d(2, 2): 13 -> 6).
//   src  (B, C, H, W)          any layout
//   dst  (B, C, H/2, W/2)      same layout family as src
// The forward workspace records each window's argmax for backward. Ties: oneDNN, like PyTorch,
// routes the gradient to one maximum of the window; with float activations ties are rare.
#include "cifar_mpi/model/layer.hpp"

namespace cifar {

class MaxPool : public Layer {
 public:
  MaxPool(std::string name, const dnnl::engine& eng, dnnl::memory& src, dnnl::memory& diff_src);
  std::string name() const override { return name_; }
  void forward(dnnl::stream& s) override;
  void backward(dnnl::stream& s) override;
  size_t workspace_bytes() const { return workspace_.get_desc().get_size(); }  // argmax indices

 private:
  std::string name_;
  BoundPrimitive fwd_, bwd_;
  dnnl::memory src_, diff_src_, workspace_;
};

}  // namespace cifar
