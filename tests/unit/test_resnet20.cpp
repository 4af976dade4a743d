// ResNet-20's layers on oneDNN against plain loops (tests/reference/reference_resnet.hpp), a
// whole basic block against the loops composed, and the model's tensors, gradient-ready prefix
// and running statistics. (The whole model against PyTorch: tests/cli/resnet20_vs_torch.sh.
// Finite differences of the whole model were tried and dropped: with 2 x 16 x 32 x 32 ReLU
// inputs behind each early weight, a few coordinates in a hundred straddle a kink at any eps
// above float noise, so such a test would pass or fail by rounding, not by the code.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>

#include "cifar_mpi/model/layers/batch_norm.hpp"
#include "cifar_mpi/model/layers/conv2d.hpp"
#include "cifar_mpi/model/layers/global_avg_pool.hpp"
#include "cifar_mpi/model/layers/residual.hpp"
#include "cifar_mpi/model/model_catalog.hpp"
#include "cifar_mpi/model/network.hpp"
#include "cifar_mpi/model/weights_io.hpp"
#include "engine_fixture.hpp"
#include "reference/reference_resnet.hpp"
#include "scratch_dir.hpp"

namespace cifar {
namespace {

using dnnl::memory;
using testing::Engine;
using testing::expect_max_abs_error;
using testing::from_plain;
using testing::random_vector;
using testing::to_plain;

memory plain_memory(Engine& e, memory::dims dims) {
  return memory({dims, memory::data_type::f32, memory::format_tag::nchw}, e.eng);
}

class BatchNormVsLoops : public ::testing::TestWithParam<bool> {};  // with the ReLU fused or not

TEST_P(BatchNormVsLoops, TrainingInferenceAndBackward) {
  const bool relu = GetParam();
  Engine e;
  const int B = 3, C = 8, H = 5, W = 5, HW = H * W;
  memory src = plain_memory(e, {B, C, H, W}), diff_src = plain_memory(e, {B, C, H, W});
  const auto x = random_vector(size_t(B) * C * HW, 1, -2.f, 3.f);
  auto gamma = random_vector(C, 2, 0.5f, 1.5f), beta = random_vector(C, 3);
  auto rm = random_vector(C, 4), rv = random_vector(C, 5, 0.5f, 2.f);
  const auto rm0 = rm, rv0 = rv;
  std::vector<float> dgamma(C), dbeta(C);
  BatchNorm bn("bn", e.eng, src, diff_src, gamma.data(), beta.data(), dgamma.data(), dbeta.data(), rm.data(), rv.data(),
               relu);
  from_plain(x, src, e);

  auto ref = reference::batch_norm_forward(x, B, C, HW, gamma, beta);
  auto y = ref.y;
  if (relu)
    for (auto& v : y) v = std::max(v, 0.0f);
  bn.forward(e.stream);
  expect_max_abs_error(to_plain(bn.dst(), e), y, 2e-5, "training dst");
  const double n = double(B) * HW;
  for (int c = 0; c < C; ++c) {  // PyTorch's rule: momentum 0.1, unbiased variance
    EXPECT_NEAR(rm[c], 0.9 * rm0[c] + 0.1 * ref.mean[c], 1e-6) << "running_mean " << c;
    EXPECT_NEAR(rv[c], 0.9 * rv0[c] + 0.1 * ref.var[c] * n / (n - 1), 1e-5) << "running_var " << c;
  }

  const auto dy = random_vector(x.size(), 6);
  from_plain(dy, bn.diff_dst(), e);
  auto dy_pre = dy;  // the gradient w.r.t. the normalised output, through the ReLU's mask
  if (relu)
    for (size_t i = 0; i < dy.size(); ++i) dy_pre[i] = ref.y[i] > 0 ? dy[i] : 0.0f;
  bn.backward(e.stream);
  e.stream.wait();
  const auto g = reference::batch_norm_backward(x, dy_pre, B, C, HW, gamma);
  expect_max_abs_error(to_plain(diff_src, e), g.dx, 2e-5, "diff_src");
  expect_max_abs_error(dgamma, g.dgamma, 5e-5, "diff weight");
  expect_max_abs_error(dbeta, g.dbeta, 5e-5, "diff bias");

  auto inf = reference::batch_norm_forward(x, B, C, HW, gamma, beta, &rm, &rv).y;
  if (relu)
    for (auto& v : inf) v = std::max(v, 0.0f);
  const auto rm_before = rm;
  bn.forward_inference(e.stream);
  e.stream.wait();
  expect_max_abs_error(to_plain(bn.dst(), e), inf, 2e-5, "inference dst");
  EXPECT_EQ(rm, rm_before) << "inference must not move the running statistics";
}

INSTANTIATE_TEST_SUITE_P(Relu, BatchNormVsLoops, ::testing::Bool());

// ResNet-20's two kinds of convolution, without bias: stride 1 and stride 2, padding 1, at
// channel counts that take oneDNN's blocked kernels.
class ConvVsLoops : public ::testing::TestWithParam<reference::StridedConv> {};

TEST_P(ConvVsLoops, ForwardAndBothGradients) {
  Engine e;
  const reference::StridedConv d = GetParam();
  memory src = plain_memory(e, {d.B, d.C, d.H, d.W}), diff_src = plain_memory(e, {d.B, d.C, d.H, d.W});
  auto w = random_vector(size_t(d.O) * d.C * 9, 1);
  std::vector<float> dw(w.size());
  Conv2d conv("conv", e.eng, src, &diff_src, d.O, ConvGeometry{3, d.S, d.P}, w.data(), nullptr, dw.data(), nullptr);
  const auto x = random_vector(size_t(d.B) * d.C * d.H * d.W, 2);
  from_plain(x, src, e);
  conv.forward(e.stream);
  ASSERT_EQ(conv.dst().get_desc().dims(), (memory::dims{d.B, d.O, d.OH(), d.OW()}));
  expect_max_abs_error(to_plain(conv.dst(), e), reference::strided_conv_forward(x, w, d), 2e-5, "dst");
  const auto dy = random_vector(size_t(d.B) * d.O * d.OH() * d.OW(), 3);
  from_plain(dy, conv.diff_dst(), e);
  conv.backward(e.stream);
  e.stream.wait();
  const auto g = reference::strided_conv_backward(x, w, dy, d);
  expect_max_abs_error(to_plain(diff_src, e), g.dx, 2e-5, "diff_src");
  expect_max_abs_error(dw, g.dw, 2e-4, "diff weight");
}

INSTANTIATE_TEST_SUITE_P(Shapes, ConvVsLoops,
                         ::testing::Values(reference::StridedConv{2, 4, 9, 9, 6, 3, 2, 1},
                                           reference::StridedConv{3, 16, 12, 12, 16, 3, 1, 1},
                                           reference::StridedConv{2, 16, 12, 12, 32, 3, 2, 1}));

TEST(GlobalAvgPool, MeanOverTheImageAndEvenSpread) {
  Engine e;
  const int B = 3, C = 16, S = 8;
  memory src = plain_memory(e, {B, C, S, S}), diff_src = plain_memory(e, {B, C, S, S});
  GlobalAvgPool pool("avgpool", e.eng, src, diff_src);
  const auto x = random_vector(size_t(B) * C * S * S, 1);
  from_plain(x, src, e);
  pool.forward(e.stream);
  std::vector<float> want(size_t(B) * C), dx_want(x.size());
  for (size_t bc = 0; bc < want.size(); ++bc) {
    double s = 0;
    for (int k = 0; k < S * S; ++k) s += x[bc * S * S + k];
    want[bc] = float(s / (S * S));
  }
  expect_max_abs_error(to_plain(pool.dst(), e), want, 1e-6, "dst");
  const auto dy = random_vector(want.size(), 2);
  from_plain(dy, pool.diff_dst(), e);
  pool.backward(e.stream);
  e.stream.wait();
  for (size_t i = 0; i < dx_want.size(); ++i) dx_want[i] = dy[i / (S * S)] / (S * S);
  expect_max_abs_error(to_plain(diff_src, e), dx_want, 1e-7, "diff_src");
}

// A block whose body is one convolution (stride 2, doubling the channels, with the subsampling
// shortcut) or (stride 1, the identity): dst = relu(conv(x) + shortcut(x)), and the data
// gradient sums the body's and the shortcut's.
class ResidualVsLoops : public ::testing::TestWithParam<bool> {};  // subsampling or identity

TEST_P(ResidualVsLoops, ForwardAndBackward) {
  const bool subsample = GetParam();
  Engine e;
  const int B = 2, C = 4, H = 6;
  const reference::StridedConv d{B, C, H, H, subsample ? 2 * C : C, 3, subsample ? 2 : 1, 1};
  memory src = plain_memory(e, {B, C, H, H}), diff_src = plain_memory(e, {B, C, H, H});
  auto w = random_vector(size_t(d.O) * C * 9, 1);
  std::vector<float> dw(w.size());
  std::vector<std::unique_ptr<Layer>> body;
  body.push_back(std::make_unique<Conv2d>("conv", e.eng, src, &diff_src, d.O, ConvGeometry{3, d.S, 1}, w.data(),
                                          nullptr, dw.data(), nullptr));
  Residual block("block", e.eng, src, diff_src, std::move(body),
                 subsample ? Residual::Shortcut::subsample : Residual::Shortcut::identity);
  const auto x = random_vector(size_t(B) * C * H * H, 2);
  from_plain(x, src, e);
  block.forward(e.stream);
  e.stream.wait();
  const auto conv_y = reference::strided_conv_forward(x, w, d);
  const auto sc = subsample ? reference::subsample_pad(x, B, C, H, H, C / 2) : x;
  std::vector<float> y(conv_y.size());
  for (size_t i = 0; i < y.size(); ++i) y[i] = std::max(conv_y[i] + sc[i], 0.0f);
  expect_max_abs_error(to_plain(block.dst(), e), y, 1e-5, "dst");

  const auto dy = random_vector(y.size(), 3);
  from_plain(dy, block.diff_dst(), e);
  block.backward(e.stream);
  e.stream.wait();
  std::vector<float> dsum(dy.size());
  for (size_t i = 0; i < dy.size(); ++i) dsum[i] = y[i] > 0 ? dy[i] : 0.0f;
  auto dx = reference::strided_conv_backward(x, w, dsum, d).dx;
  for (int b = 0; b < B; ++b)  // + the shortcut's transpose
    for (int c = 0; c < C; ++c)
      for (int i = 0; i < H; ++i)
        for (int j = 0; j < H; ++j) {
          const size_t xi = ((size_t(b) * C + c) * H + i) * H + j;
          if (!subsample)
            dx[xi] += dsum[xi];
          else if (i % 2 == 0 && j % 2 == 0)
            dx[xi] += dsum[((size_t(b) * d.O + c + C / 2) * d.OH() + i / 2) * d.OW() + j / 2];
        }
  expect_max_abs_error(to_plain(diff_src, e), dx, 1e-5, "diff_src");
}

INSTANTIATE_TEST_SUITE_P(Shortcuts, ResidualVsLoops, ::testing::Bool());

// He et al.'s basic block as ResNet-20 builds it: conv, BatchNorm + ReLU, conv, BatchNorm, plus
// the identity, ReLU; against the same composed from the loops, forward and every gradient.
TEST(ResidualVsLoops, BasicBlockWithBatchNorms) {
  Engine e;
  const int B = 2, C = 8, H = 6, HW = H * H;
  const reference::StridedConv d{B, C, H, H, C, 3, 1, 1};
  memory src = plain_memory(e, {B, C, H, H}), diff_src = plain_memory(e, {B, C, H, H});
  auto w1 = random_vector(size_t(C) * C * 9, 1), w2 = random_vector(size_t(C) * C * 9, 2);
  auto g1 = random_vector(C, 3, 0.5f, 1.5f), b1 = random_vector(C, 4), g2 = random_vector(C, 5, 0.5f, 1.5f),
       b2 = random_vector(C, 6);
  std::vector<float> dw1(w1.size()), dw2(w2.size()), dg1(C), db1(C), dg2(C), db2(C), rm1(C), rv1(C, 1.f), rm2(C),
      rv2(C, 1.f);
  std::vector<std::unique_ptr<Layer>> body;
  body.push_back(std::make_unique<Conv2d>("conv1", e.eng, src, &diff_src, C, ConvGeometry{3, 1, 1}, w1.data(), nullptr,
                                          dw1.data(), nullptr));
  body.push_back(std::make_unique<BatchNorm>("bn1", e.eng, body.back()->dst(), body.back()->diff_dst(), g1.data(),
                                             b1.data(), dg1.data(), db1.data(), rm1.data(), rv1.data(), true));
  body.push_back(std::make_unique<Conv2d>("conv2", e.eng, body.back()->dst(), &body.back()->diff_dst(), C,
                                          ConvGeometry{3, 1, 1}, w2.data(), nullptr, dw2.data(), nullptr));
  body.push_back(std::make_unique<BatchNorm>("bn2", e.eng, body.back()->dst(), body.back()->diff_dst(), g2.data(),
                                             b2.data(), dg2.data(), db2.data(), rm2.data(), rv2.data(), false));
  Residual block("block", e.eng, src, diff_src, std::move(body), Residual::Shortcut::identity);
  const auto x = random_vector(size_t(B) * C * HW, 7);
  from_plain(x, src, e);
  block.forward(e.stream);
  e.stream.wait();
  // The loops: forward ...
  const auto c1 = reference::strided_conv_forward(x, w1, d);
  auto a1 = reference::batch_norm_forward(c1, B, C, HW, g1, b1).y;
  const auto n1 = a1;
  for (auto& v : a1) v = std::max(v, 0.0f);
  const auto c2 = reference::strided_conv_forward(a1, w2, d);
  const auto n2 = reference::batch_norm_forward(c2, B, C, HW, g2, b2).y;
  std::vector<float> y(x.size());
  for (size_t i = 0; i < y.size(); ++i) y[i] = std::max(n2[i] + x[i], 0.0f);
  expect_max_abs_error(to_plain(block.dst(), e), y, 2e-5, "dst");
  // ... and backward.
  const auto dy = random_vector(y.size(), 8);
  from_plain(dy, block.diff_dst(), e);
  block.backward(e.stream);
  e.stream.wait();
  std::vector<float> dsum(dy.size());
  for (size_t i = 0; i < dy.size(); ++i) dsum[i] = y[i] > 0 ? dy[i] : 0.0f;
  const auto gbn2 = reference::batch_norm_backward(c2, dsum, B, C, HW, g2);
  const auto gc2 = reference::strided_conv_backward(a1, w2, gbn2.dx, d);
  auto da1 = gc2.dx;
  for (size_t i = 0; i < da1.size(); ++i) da1[i] = n1[i] > 0 ? da1[i] : 0.0f;
  const auto gbn1 = reference::batch_norm_backward(c1, da1, B, C, HW, g1);
  const auto gc1 = reference::strided_conv_backward(x, w1, gbn1.dx, d);
  auto dx = gc1.dx;
  for (size_t i = 0; i < dx.size(); ++i) dx[i] += dsum[i];
  expect_max_abs_error(dg2, gbn2.dgamma, 1e-4, "bn2 weight");
  expect_max_abs_error(db2, gbn2.dbeta, 1e-4, "bn2 bias");
  expect_max_abs_error(dw2, gc2.dw, 2e-4, "conv2 weight");
  expect_max_abs_error(dg1, gbn1.dgamma, 1e-4, "bn1 weight");
  expect_max_abs_error(db1, gbn1.dbeta, 1e-4, "bn1 bias");
  expect_max_abs_error(dw1, gc1.dw, 2e-4, "conv1 weight");
  expect_max_abs_error(to_plain(diff_src, e), dx, 2e-5, "diff_src");
}

ParamArena resnet20_arena(uint64_t seed) {
  ParamArena a;
  const ModelSpec& m = find_model("resnet20");
  m.register_tensors(a);
  m.initialize(a, seed);
  return a;
}

TEST(ResNet20, TensorsAreThoseOfPyTorchsStateDict) {
  const ParamArena a = resnet20_arena(1);
  EXPECT_EQ(a.specs().size(), 59u);
  EXPECT_EQ(a.total_count(), 269722u);  // sum(p.numel() for p in model.parameters())
  EXPECT_EQ(a.buffer_specs().size(), 38u);
  EXPECT_EQ(a.specs().front().name, "conv1.weight");
  EXPECT_EQ(a.spec("layer2.0.conv1.weight").shape, (std::vector<size_t>{32, 16, 3, 3}));
  EXPECT_EQ(a.buffer_specs().back().name, "layer3.2.bn2.running_var");
  EXPECT_EQ(a.specs().back().name, "fc.bias");
}

TEST(ResNet20, GradsReadyHookReportsGrowingPrefixEndingAtWholeArena) {
  Engine e;
  ParamArena arena = resnet20_arena(3);
  Network net(find_model("resnet20"), e.eng, arena, 2);
  const auto y = testing::random_labels(2, 1);
  std::vector<size_t> ready;
  net.forward_backward(e.stream, y.data(), 2, [&](size_t n) { ready.push_back(n); });
  EXPECT_EQ(ready.size(), 1u + 19u + 19u);  // fc, and every convolution and BatchNorm
  EXPECT_TRUE(std::is_sorted(ready.begin(), ready.end()));
  EXPECT_EQ(ready.front(), arena.spec("fc.weight").offset + arena.spec("fc.weight").count);
  EXPECT_EQ(ready.back(), arena.total_count());
}

TEST(ResNet20, RunningStatisticsMoveInTrainingAndRoundTripThroughWeightsFile) {
  Engine e;
  ParamArena arena = resnet20_arena(5);
  Network net(find_model("resnet20"), e.eng, arena, 4);
  const auto x = testing::random_input(4, 2);
  const auto y = testing::random_labels(4, 3);
  std::copy(x.begin(), x.end(), net.input());
  const std::vector<float> before(arena.buffers().begin(), arena.buffers().end());
  net.forward(e.stream, y.data());
  EXPECT_TRUE(std::equal(before.begin(), before.end(), arena.buffers().begin())) << "evaluation moved them";
  net.forward_backward(e.stream, y.data(), 4);
  EXPECT_FALSE(std::equal(before.begin(), before.end(), arena.buffers().begin())) << "training did not move them";
  testing::ScratchDir dir;
  save_weights(arena, dir.path() / "w.h5");
  ParamArena back = resnet20_arena(6);
  load_weights(back, dir.path() / "w.h5");
  EXPECT_TRUE(std::equal(arena.buffers().begin(), arena.buffers().end(), back.buffers().begin()));
  EXPECT_TRUE(std::equal(arena.params().begin(), arena.params().end(), back.params().begin()));
}

}  // namespace
}  // namespace cifar
