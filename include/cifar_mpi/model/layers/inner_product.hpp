#pragma once
// Fully connected layer (PyTorch nn.Linear). A 4-D src (B, C, H, W) is flattened in C*H*W order,
// like PyTorch's view(-1, C*H*W): the weight's PyTorch layout [out, C*H*W] is then exactly OIHW
// with I = C, so no explicit flatten or reorder of activations is needed.
//   src     (B, C, H, W) or (B, I)   any layout
//   weight  (O, I)                   arena, PyTorch layout
//   bias    (O)                      arena
//   dst     (B, O)                   plain row-major (the loss reads it directly)
// relu_post_op: dst = relu(x W^T + b) in the forward pass itself; the caller owes the ReLU's
// backward mask (a Relu layer built with applied_upstream), as for Conv2d.
#include "cifar_mpi/model/layers/weighted_layer.hpp"

namespace cifar {

class InnerProduct : public WeightedLayer {
 public:
  InnerProduct(std::string name, const dnnl::engine& eng, dnnl::memory& src, dnnl::memory* diff_src,
               int out_features, float* weight, float* bias, float* dweight, float* dbias,
               bool relu_post_op = false);
};

}  // namespace cifar
