#pragma once
// Fully connected layer (PyTorch nn.Linear). A 4-D src (B, C, H, W) is flattened in C*H*W order,
// like PyTorch's view(-1, C*H*W): the weight's PyTorch layout [out, C*H*W] is then exactly OIHW
// with I = C, so no explicit flatten or reorder of activations is needed.
//   src     (B, C, H, W) or (B, I)   any layout (f32, or bf16 when the compute type is bf16)
//   weight  (O, I)                   arena, PyTorch layout, f32 (reordered to bf16 each step if bf16)
//   bias    (O)                      arena, f32
//   dst     (B, O)                   plain row-major, f32 (the next layer and the loss read it);
//                                    with bf16, diff_dst is cast to bf16 for the backward passes
//   dweight (O, I), dbias (O)        arena, f32 (oneDNN writes f32 gradients from bf16 data)
// relu_post_op: dst = relu(x W^T + b) in the forward pass itself; the caller owes the ReLU's
// backward mask (a Relu layer built with applied_upstream), as for Conv2d.
#include <array>

#include "cifar_mpi/model/conv_algo.hpp"
#include "cifar_mpi/model/layers/weighted_layer.hpp"

namespace cifar {

class InnerProduct : public WeightedLayer {
 public:
  InnerProduct(std::string name, const dnnl::engine& eng, dnnl::memory& src, dnnl::memory* diff_src,
               int out_features, float* weight, float* bias, float* dweight, float* dbias,
               ComputeDtype dtype = ComputeDtype::fp32, bool relu_post_op = false);

  // oneDNN's implementation names: forward, backward data ("" without a data gradient), backward
  // weights. A name starting "ref:" is oneDNN's slow reference loop.
  std::array<std::string, 3> impl_names() const { return primitive_impls(); }
};

}  // namespace cifar
