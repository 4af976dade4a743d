#pragma once
// What convolution and inner product share: weights and bias in the arena (PyTorch layout),
// bridged to the layouts their primitives chose, and the same step:
//   forward:  reorder src and weights if needed -> forward primitive
//   backward: weight gradient (=) -> reorder it to the arena if needed
//             -> data gradient (=) into the previous layer's diff_dst (not for the first layer)
// The subclasses only build the primitives; forward and backward are written once, here.
#include <array>
#include <string>
#include <vector>

#include "cifar_mpi/model/bound_primitive.hpp"
#include "cifar_mpi/model/layer.hpp"

namespace cifar {

class WeightedLayer : public Layer {
 public:
  std::string name() const override { return name_; }
  void forward(dnnl::stream& s) override;
  void backward(dnnl::stream& s) override;  // diff_dst cast if any, backward_weights, backward_data
  // backward, pausing once the weight gradients are final (before backward_data: the caller
  // can hand them over a whole data-gradient pass earlier).
  void backward_with_pauses(dnnl::stream& s, const BackwardPause& pause) override;
  // The two halves of backward, apart for timing them (probe_conv_algorithms).
  void backward_weights(dnnl::stream& s);
  void backward_data(dnnl::stream& s);  // no-op for the first layer
  // The three primitives alone, without the reorders around them (train_step_bench times the
  // two apart; a step always runs forward / backward, which call these).
  void forward_primitive(dnnl::stream& s);
  void backward_weights_primitive(dnnl::stream& s);
  void backward_data_primitive(dnnl::stream& s);
  // oneDNN's implementation of forward, backward data ("" for the first layer), backward weights.
  std::array<std::string, 3> primitive_impls() const;
  bool has_params() const override { return true; }
  // The src layout the forward primitive reads (a src in another layout is reordered to it).
  dnnl::memory::desc wanted_src_desc() { return src_.inner().get_desc(); }
  // The reorders this layer runs each step (layouts that differ), by role, for train_step_bench.
  struct Reorder {
    const char* role;  // "src", "weight fwd", "diff_dst", "weight bwd", "dweight", "diff_src"
    LayoutBridge* bridge;
  };
  std::vector<Reorder> active_reorders();

 protected:
  explicit WeightedLayer(std::string name) : name_(std::move(name)) {}
  // The forward primitive's attributes: with relu, ReLU as an eltwise post-op (applied to dst in
  // the same pass, so dst is the activated output; exact: it is the eltwise primitive's kernel).
  static dnnl::primitive_attr forward_attr(bool relu);

  // diff_dst as the backward primitives read it: by default diff_dst_ itself (this bridge left
  // empty); a layer whose backward wants another type (bf16 InnerProduct under an f32 dst) sets
  // it, and backward() casts once before both passes.
  dnnl::memory& backward_diff_dst() { return diff_dst_in_.active() ? diff_dst_in_.inner() : diff_dst_; }

  // Binds the three primitives to their memories; the subclass's build calls it last.
  void bind_arguments();

  std::string name_;
  dnnl::primitive fwd_, bwd_weights_;
  std::optional<dnnl::primitive> bwd_data_;  // absent for the first layer
  BoundPrimitive fwd_bound_, bwd_weights_bound_, bwd_data_bound_;
  const float* grads_end_ = nullptr;  // one past the weight's gradient in the arena (the pause's)
  LayoutBridge src_, weight_fwd_, weight_bwd_, dweight_, diff_src_, diff_dst_in_;
  dnnl::memory bias_, dbias_;
};

}  // namespace cifar
