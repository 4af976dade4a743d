#pragma once
// ReLU, in place: dst is src and diff_src is diff_dst. Backward uses dst (relu_use_dst_for_bwd:
// diff = dst > 0 ? diff : 0), which equals PyTorch's rule and lets forward overwrite its input,
// saving a pass over the largest activations of the network.
//   src = dst   (B, C, H, W) or (B, C), the previous layer's layout
// applied_upstream: an earlier layer's primitive already applied ReLU as a post-op (a
// convolution before max pooling, or the inner product right before), so forward has nothing
// left to do; backward still masks the gradient here, with the same dst.
#include "cifar_mpi/model/layer.hpp"

namespace cifar {

class Relu : public Layer {
 public:
  Relu(std::string name, const dnnl::engine& eng, dnnl::memory& src, dnnl::memory& diff_src,
       bool applied_upstream = false);
  bool applied_upstream() const { return applied_upstream_; }
  std::string name() const override { return name_; }
  void forward(dnnl::stream& s) override;
  void backward(dnnl::stream& s) override;

 private:
  std::string name_;
  bool applied_upstream_;
  BoundPrimitive fwd_, bwd_;
};

}  // namespace cifar
