#pragma once
// 2-D convolution, stride 1, no padding (PyTorch nn.Conv2d(in, out, k)).
//   src     (B, C, H, W)            any layout
//   weight  (O, C, K, K)            arena, PyTorch OIHW
//   bias    (O)                     arena
//   dst     (B, O, H-K+1, W-K+1)    layout chosen by oneDNN
#include "cifar_mpi/model/layers/weighted_layer.hpp"

namespace cifar {

class Conv2d : public WeightedLayer {
 public:
  // diff_src: the previous layer's diff_dst, or nullptr for the first layer (no data gradient).
  Conv2d(std::string name, const dnnl::engine& eng, dnnl::memory& src, dnnl::memory* diff_src,
         int out_channels, int kernel, float* weight, float* bias, float* dweight, float* dbias);
};

}  // namespace cifar
