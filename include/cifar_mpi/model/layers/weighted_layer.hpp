#pragma once
// What convolution and inner product share: weights and bias in the arena (PyTorch layout),
// bridged to the layouts their primitives chose, and the same step:
//   forward:  reorder src and weights if needed -> forward primitive
//   backward: weight gradient (=) -> reorder it to the arena if needed
//             -> data gradient (=) into the previous layer's diff_dst (not for the first layer)
// The subclasses only build the primitives; forward and backward are written once, here.
#include "cifar_mpi/model/layer.hpp"

namespace cifar {

class WeightedLayer : public Layer {
 public:
  std::string name() const override { return name_; }
  void forward(dnnl::stream& s) override;
  void backward(dnnl::stream& s) override;  // backward_weights, then backward_data
  // The two halves of backward, apart for timing them (probe_conv_algorithms).
  void backward_weights(dnnl::stream& s);
  void backward_data(dnnl::stream& s);  // no-op for the first layer
  bool has_params() const override { return true; }
  // The src layout the forward primitive reads (a src in another layout is reordered to it).
  dnnl::memory::desc wanted_src_desc() { return src_.inner().get_desc(); }

 protected:
  explicit WeightedLayer(std::string name) : name_(std::move(name)) {}

  std::string name_;
  dnnl::primitive fwd_, bwd_weights_;
  std::optional<dnnl::primitive> bwd_data_;  // absent for the first layer
  LayoutBridge src_, weight_fwd_, weight_bwd_, dweight_, diff_src_;
  dnnl::memory bias_, dbias_;
};

}  // namespace cifar
