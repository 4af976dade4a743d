#pragma once
// The 2x2, stride-2 max pool of a channel-blocked activation, written out by hand: on AVX2 CPUs
// oneDNN 2.6's pooling (jit:avx2) runs at about 0.15 of memory bandwidth on these shapes
// (128x32x30x30: 9 ms a forward pass that moves 19 MB), and the two pools were a third of
// SimpleCNN's step there. Layout: `planes` planes (batch x channel blocks) of h x w pixels of `block` channels each,
// pixel-major inside a plane: oneDNN's abcd (block 1), aBcd8b (8), aBcd16b (16). Floor mode (13 ->
// 6): the last row and column of an odd size are never pooled.
#include <cstddef>
#include <cstdint>

namespace cifar {

struct PoolGeometry {
  std::int64_t planes = 0, h = 0, w = 0, block = 1;
  std::int64_t oh() const { return h / 2; }
  std::int64_t ow() const { return w / 2; }
};

// Which compiled form runs: the fastest the CPU has (AVX2 where present), or the portable one (SSE2
// on x86-64), which the tests run too so that both are checked on any machine.
enum class PoolCode { fastest, portable };

// dst = the maximum of each window; argmax = which of its four (0: top left, 1: top right, 2:
// bottom left, 3: bottom right) won: the first maximum in row-major order, as PyTorch and the naive
// reference choose, and NaN wins (it propagates, as in PyTorch).
void max_pool2x2_forward(const float* src, float* dst, std::uint8_t* argmax, const PoolGeometry& g,
                         PoolCode code = PoolCode::fastest);

// diff_src = diff_dst at each window's winner, 0 at its other three pixels and at the unpooled last
// row and column (=, not +=).
void max_pool2x2_backward(const float* diff_dst, const std::uint8_t* argmax, float* diff_src, const PoolGeometry& g,
                          PoolCode code = PoolCode::fastest);

}  // namespace cifar
