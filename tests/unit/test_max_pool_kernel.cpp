// The hand-written 2x2 max pool (src/model/layers/max_pool_kernel.cpp) against the naive reference
// (tests/reference/reference_cnn.hpp): every layout it serves (plain, and channel blocks of 8 and
// 16 as oneDNN's convolutions give, plus blocks that take its one-channel path), odd sizes (floor
// mode), ties on purpose, and NaN.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "cifar_mpi/model/layers/max_pool_kernel.hpp"
#include "reference/reference_cnn.hpp"

namespace ref = cifar::reference;

namespace {

// Values drawn from a few levels so that windows tie often, and some exact zeros (post-ReLU).
std::vector<float> tie_prone(size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = float(int(rng() % 7) - 3) * 0.5f;
  return v;
}

// NCHW -> N (C/block) H W block (to_blocked), or back.
std::vector<float> reblock(const std::vector<float>& in, const ref::PoolDims& d, int block, int H, int W,
                           bool to_blocked) {
  std::vector<float> out(in.size());
  for (int n = 0; n < d.B; ++n)
    for (int c = 0; c < d.C; ++c)
      for (int h = 0; h < H; ++h)
        for (int w = 0; w < W; ++w) {
          const size_t plain = ((size_t(n) * d.C + c) * H + h) * W + w;
          const size_t blocked = (((size_t(n) * (d.C / block) + c / block) * H + h) * W + w) * block + c % block;
          if (to_blocked)
            out[blocked] = in[plain];
          else
            out[plain] = in[blocked];
        }
  return out;
}
std::vector<float> to_blocked(const std::vector<float>& x, const ref::PoolDims& d, int block, int H, int W) {
  return reblock(x, d, block, H, W, true);
}
std::vector<float> from_blocked(const std::vector<float>& y, const ref::PoolDims& d, int block, int H, int W) {
  return reblock(y, d, block, H, W, false);
}

void check_against_reference(const ref::PoolDims& d, int block, std::uint32_t seed, cifar::PoolCode code) {
  SCOPED_TRACE(std::string(code == cifar::PoolCode::fastest ? "fastest" : "portable") + " code, " + "B " +
               std::to_string(d.B) + " C " + std::to_string(d.C) + " H " + std::to_string(d.H) + " W " +
               std::to_string(d.W) + " block " + std::to_string(block));
  const std::vector<float> x = tie_prone(d.x_size(), seed);
  const std::vector<float> dy = tie_prone(d.y_size(), seed + 1);
  std::vector<size_t> argmax;
  const std::vector<float> y_ref = ref::maxpool2x2_forward(x, d, &argmax);
  const std::vector<float> dx_ref = ref::maxpool2x2_backward(argmax, dy, d);

  const cifar::PoolGeometry g{std::int64_t(d.B) * (d.C / block), d.H, d.W, block};
  const std::vector<float> xb = to_blocked(x, d, block, d.H, d.W);
  std::vector<float> yb(d.y_size(), -7.f);
  std::vector<std::uint8_t> ws(d.y_size(), 9);
  cifar::max_pool2x2_forward(xb.data(), yb.data(), ws.data(), g, code);
  EXPECT_EQ(from_blocked(yb, d, block, d.OH(), d.OW()), y_ref);

  const std::vector<float> dyb = to_blocked(dy, d, block, d.OH(), d.OW());
  std::vector<float> dxb(d.x_size(),
                         123.f);  // = not +=: stale values must go, the unpooled edge too
  cifar::max_pool2x2_backward(dyb.data(), ws.data(), dxb.data(), g, code);
  EXPECT_EQ(from_blocked(dxb, d, block, d.H, d.W), dx_ref);
}

}  // namespace

TEST(MaxPoolKernel, MatchesTheReferenceInEveryLayoutItServes) {
  std::uint32_t seed = 1;
  for (auto code : {cifar::PoolCode::fastest, cifar::PoolCode::portable})
    for (int block : {1, 2, 4, 8, 16})
      for (auto [H, W] : {std::pair{2, 2}, {4, 6}, {13, 13}, {30, 30}, {7, 4}, {5, 9}})
        check_against_reference(ref::PoolDims{3, 16, H, W}, block, seed++, code);
}

TEST(MaxPoolKernel, NanWinsItsWindowAsInPyTorch) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (auto code : {cifar::PoolCode::fastest, cifar::PoolCode::portable})
    for (int block : {1, 4, 8}) {
      const cifar::PoolGeometry g{1, 2, 2, block};
      for (int pos = 0; pos < 4; ++pos) {
        std::vector<float> x(4 * size_t(block), 5.f), y(block);
        std::vector<std::uint8_t> ws(block);
        for (int k = 0; k < block; ++k) x[size_t(pos) * block + k] = nan;
        cifar::max_pool2x2_forward(x.data(), y.data(), ws.data(), g, code);
        for (int k = 0; k < block; ++k) {
          EXPECT_TRUE(std::isnan(y[k])) << "block " << block << " NaN at " << pos;
          EXPECT_EQ(ws[k], pos) << "block " << block;
        }
      }
    }
}
