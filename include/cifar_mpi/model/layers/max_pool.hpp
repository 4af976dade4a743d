#pragma once
// Max pooling 2x2, stride 2, floor mode (PyTorch nn.MaxPool2d(2, 2): 13 -> 6).
//   src  (B, C, H, W)          any layout
//   dst  (B, C, H/2, W/2)      same layout family as src
// The forward workspace records each window's argmax for backward. Plain and channel-blocked
// layouts (what the convolutions give) run max_pool_kernel.hpp's loops, where ties go to the first
// maximum in row-major order as in PyTorch; any other layout runs oneDNN's pooling.
#include <optional>

#include "cifar_mpi/model/layer.hpp"
#include "cifar_mpi/model/layers/max_pool_kernel.hpp"

namespace cifar {

class MaxPool : public Layer {
 public:
  // use_kernel: the hand-written kernel where the layout allows it (false: oneDNN's pooling always).
  MaxPool(std::string name, const dnnl::engine& eng, dnnl::memory& src, dnnl::memory& diff_src,
          bool use_kernel = true);
  std::string name() const override { return name_; }
  void forward(dnnl::stream& s) override;
  void backward(dnnl::stream& s) override;
  size_t workspace_bytes() const { return workspace_.get_desc().get_size(); }  // argmax indices
  std::string implementation() const;  // which of the two runs, for the benchmark's table

 private:
  std::string name_;
  BoundPrimitive fwd_, bwd_;
  dnnl::memory src_, diff_src_, workspace_;
  std::optional<PoolGeometry> geometry_;  // set when the hand-written kernel runs
};

}  // namespace cifar
