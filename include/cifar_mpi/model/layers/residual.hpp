#pragma once
// A residual block: dst = relu(body(src) + shortcut(src)) (He et al. 2016's basic block when the
// body is conv-BN-ReLU-conv-BN). The body's layers are built by the model over this block's src
// (its first layer writes its data gradient into the previous layer's diff_dst); the block adds
// the shortcut in forward and the shortcut's gradient in backward.
//   identity:  shortcut(x) = x
//   subsample: shortcut(x) = x[:, :, ::2, ::2] zero-padded by `pad` channels on each side
//              (option A: no parameters; used where the body halves the side and doubles the
//              channels). Computed by plain loops on NCHW copies: 2 of ResNet-20's 9 blocks.
// The add and the ReLU are one oneDNN binary primitive with a ReLU post-op; backward masks
// diff_dst with dst > 0 into the body's last diff_dst (which the shortcut's gradient reads too).
#include <vector>

#include "cifar_mpi/model/layer.hpp"

namespace cifar {

class Residual : public Layer {
 public:
  enum class Shortcut { identity, subsample };

  // body: built over src, in forward order. diff_src: the previous layer's diff_dst.
  Residual(std::string name, const dnnl::engine& eng, dnnl::memory& src, dnnl::memory& diff_src,
           std::vector<std::unique_ptr<Layer>> body, Shortcut shortcut);
  std::string name() const override { return name_; }
  void forward(dnnl::stream& s) override;
  void forward_inference(dnnl::stream& s) override;
  void backward(dnnl::stream& s) override;
  void backward_with_pauses(dnnl::stream& s, const BackwardPause& pause) override;
  bool has_params() const override { return true; }
  std::vector<const Layer*> parts() const override;

 private:
  void add_shortcut(dnnl::stream& s);             // dst = relu(body out + shortcut(src))
  void add_shortcut_gradient(dnnl::stream& s);    // diff_src += shortcut^T(body's diff_dst)
  void subsample_forward();                       // shortcut_plain_ = pad(src_plain_[.., ::2, ::2])
  void subsample_backward();                      // src_grad_plain_ = its transpose of diff_plain_

  std::string name_;
  std::vector<std::unique_ptr<Layer>> body_;
  Shortcut shortcut_;
  int pad_ = 0;
  // Shortcut data in plain NCHW for the loops (subsample), bridged to the layouts around them.
  dnnl::memory src_plain_, shortcut_plain_, diff_plain_, src_grad_plain_;
  LayoutBridge src_to_plain_, diff_to_plain_, shortcut_in_, src_grad_in_;
  BoundPrimitive add_relu_, relu_backward_, gradient_add_;
};

}  // namespace cifar
