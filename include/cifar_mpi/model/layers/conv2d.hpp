#pragma once
// 2-D convolution (PyTorch nn.Conv2d(in, out, k, stride, padding, bias)).
//   src     (B, C, H, W)            any layout (f32, or bf16 when the compute type is bf16)
//   weight  (O, C, K, K)            arena, PyTorch OIHW, f32 (reordered to bf16 each step if bf16)
//   bias    (O)                     arena, f32; absent (nullptr) for bias=False
//   dst     (B, O, (H+2P-K)/S+1, (W+2P-K)/S+1)   layout chosen by oneDNN, in the compute type
//   dweight (O, C, K, K), dbias (O) arena, f32 (oneDNN writes f32 gradients from bf16 data)
// relu_post_op: dst = relu(conv) in the forward pass itself. The caller then owes the ReLU's
// backward mask (Network applies it after max pooling, where it is the same mask on 4x fewer
// elements); the backward passes take diff_dst as the gradient w.r.t. the pre-activation.
#include <array>
#include <stdexcept>

#include "cifar_mpi/model/conv_algo.hpp"
#include "cifar_mpi/model/layers/weighted_layer.hpp"

namespace cifar {

// What Conv2d throws when oneDNN lacks an asked algorithm (or compute type) for its shapes.
struct ConvUnsupported : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Kernel side, stride and zero padding (the same in both dimensions).
struct ConvGeometry {
  int kernel = 3, stride = 1, pad = 0;
};

class Conv2d : public WeightedLayer {
 public:
  // diff_src: the previous layer's diff_dst, or nullptr for the first layer (no data gradient).
  // Throws ConvUnsupported when oneDNN has no implementation of an asked algorithm for these shapes.
  Conv2d(std::string name, const dnnl::engine& eng, dnnl::memory& src, dnnl::memory* diff_src,
         int out_channels, ConvGeometry geometry, float* weight, float* bias, float* dweight, float* dbias,
         ConvPassAlgos algos = {}, ComputeDtype dtype = ComputeDtype::fp32, bool relu_post_op = false);

  const ConvPassAlgos& algos() const { return algos_; }
  const ConvGeometry& geometry() const { return geometry_; }
  // oneDNN's implementation names (WeightedLayer::primitive_impls): forward, backward data (""
  // for the first layer), backward weights. A name starting "ref:" is oneDNN's slow reference loop.
  std::array<std::string, 3> impl_names() const { return primitive_impls(); }

 private:
  void build(const dnnl::engine& eng, dnnl::memory& src, dnnl::memory* diff_src, int out_channels, ConvGeometry g,
             float* weight, float* bias, float* dweight, float* dbias, ComputeDtype dtype, bool relu_post_op);
  ConvPassAlgos algos_;
  ConvGeometry geometry_;
};

}  // namespace cifar
