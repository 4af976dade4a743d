// The oneDNN network against the plain C++ reference (random data, several batch sizes) and
// against PyTorch's own numbers for two SGD steps (simplecnn_steps.h5, tests/fixture_reader.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "cifar_mpi/optim/sgd_momentum.hpp"
#include "engine_fixture.hpp"
#include "fixture_reader.hpp"
#include "test_util.hpp"

namespace cifar {
namespace {

using testing::Engine;
using testing::expect_close;

// Float32 results differ from another correct implementation by summation order only.
constexpr double kRtol = 1e-4, kAtol = 1e-5;

// Layer indices in SimpleCnn::layers(). The network applies ReLU after max pooling (the same
// function), and ReLU works in place: after forward, pool1's memory holds the reference's
// pool1 (= maxpool(relu(conv1_out))), fc1's holds relu3, and conv1's holds relu1 (= relu(conv1_out)): the
// convolutions apply ReLU as a post-op (fuse_relu) and the ReLU layers only mask the gradient.
enum { kConv1, kPool1, kRelu1, kConv2, kPool2, kRelu2, kFc1, kRelu3, kFc2 };

class SimpleCnnVsReference : public ::testing::TestWithParam<size_t> {};

TEST_P(SimpleCnnVsReference, ForwardBackwardMatch) {
  const size_t batch = GetParam();
  Engine e;
  ParamArena arena = testing::make_arena(11);
  SimpleCnn net(e.eng, arena, batch);
  const auto x = testing::random_input(batch, 5);
  const auto y = testing::random_labels(batch, 6);
  std::copy(x.begin(), x.end(), net.input());
  const LossResult r = net.forward_backward(e.stream, y.data(), batch);

  reference::Activations act, dact;
  reference::Grads grads;
  const float ref_loss = reference::forward_backward(testing::to_reference(arena), x.data(), y.data(),
                                                     static_cast<int>(batch), &act, &dact, &grads);
  EXPECT_NEAR(r.loss, ref_loss, 1e-5 * std::max(1.0f, std::fabs(ref_loss)));
  const auto& L = net.layers();
  expect_close("relu1", testing::to_plain(L[kConv1]->dst(), e), act.relu1, kRtol, kAtol);
  expect_close("pool1", testing::to_plain(L[kPool1]->dst(), e), act.pool1, kRtol, kAtol);
  expect_close("relu2", testing::to_plain(L[kConv2]->dst(), e), act.relu2, kRtol, kAtol);
  expect_close("pool2", testing::to_plain(L[kPool2]->dst(), e), act.pool2, kRtol, kAtol);
  expect_close("relu3", testing::to_plain(L[kRelu3]->dst(), e), act.relu3, kRtol, kAtol);
  expect_close("logits", testing::to_plain(L[kFc2]->dst(), e), act.logits, kRtol, kAtol);
  // Gradients w.r.t. activations: what enters each layer's backward.
  expect_close("d logits", testing::to_plain(L[kFc2]->diff_dst(), e), dact.logits, kRtol, kAtol);
  expect_close("d fc1_out", testing::to_plain(L[kFc1]->diff_dst(), e), dact.fc1_out, kRtol, kAtol);
  expect_close("d conv2_out", testing::to_plain(L[kConv2]->diff_dst(), e), dact.conv2_out, kRtol, kAtol);
  expect_close("d conv1_out", testing::to_plain(L[kConv1]->diff_dst(), e), dact.conv1_out, kRtol, kAtol);
  for (const auto& [name, want] : reference::named_tensors(grads))
    expect_close(std::string("grad ") + name, testing::tensor(arena, name, true), *want, kRtol, kAtol);
}

// 128 is the training batch; 80 the final partial batch of an epoch (50,000 = 390*128 + 80);
// 1 and 7 catch blocking and tail handling inside the primitives.
INSTANTIATE_TEST_SUITE_P(BatchSizes, SimpleCnnVsReference, ::testing::Values(1, 7, 80, 128));

TEST(SimpleCnn, NetworksOfDifferentBatchSizesShareWeights) {
  Engine e;
  ParamArena arena = testing::make_arena(3);
  SimpleCnn big(e.eng, arena, 8), small(e.eng, arena, 3);
  const auto x = testing::random_input(8, 1);
  const auto y = testing::random_labels(8, 2);
  std::copy(x.begin(), x.end(), big.input());
  std::copy(x.begin(), x.begin() + 3 * 3072, small.input());
  big.forward(e.stream, y.data());
  small.forward(e.stream, y.data());
  for (size_t i = 0; i < 3 * 10; ++i) EXPECT_NEAR(big.logits()[i], small.logits()[i], 1e-5);
  arena.params()[arena.spec("fc2.bias").offset] += 1.0f;  // a weight change is seen by both
  big.forward(e.stream, y.data());
  EXPECT_NEAR(big.logits()[0], small.logits()[0] + 1.0f, 1e-5);
}

TEST(SimpleCnn, GradsReadyHookReportsGrowingPrefixEndingAtWholeArena) {
  Engine e;
  ParamArena arena = testing::make_arena(3);
  SimpleCnn net(e.eng, arena, 2);
  const auto y = testing::random_labels(2, 1);
  std::vector<size_t> ready;
  net.forward_backward(e.stream, y.data(), 2, [&](size_t n) { ready.push_back(n); });
  ASSERT_EQ(ready.size(), 4u);  // one per parameter layer: fc2, fc1, conv2, conv1
  EXPECT_TRUE(std::is_sorted(ready.begin(), ready.end()));
  EXPECT_EQ(ready.front(), arena.spec("fc2.weight").offset + arena.spec("fc2.weight").count);
  EXPECT_EQ(ready.back(), arena.total_count());
}

// Two builds of the network that must compute the same function the same way: the same bits in
// the logits, the loss and every gradient over three SGD steps (so later steps see the updated
// weights). Inputs include an all-zero and an all-negative image: after the ReLU, windows of ties
// where max pooling's argmax could differ.
void expect_same_bits(const NetworkOptions& a_options, const NetworkOptions& b_options, uint32_t seed) {
  Engine e;
  ParamArena a_arena = testing::make_arena(seed), b_arena = testing::make_arena(seed);
  const size_t batch = 16;
  SimpleCnn a_net(e.eng, a_arena, batch, a_options), b_net(e.eng, b_arena, batch, b_options);
  auto x = testing::random_input(batch, seed + 1);
  for (size_t i = 0; i < 3072; ++i) x[i] = 0.0f;                     // image 0: all zero
  for (size_t i = 3072; i < 2 * 3072; ++i) x[i] = -std::fabs(x[i]);  // image 1: all negative
  const auto y = testing::random_labels(batch, seed + 2);
  std::copy(x.begin(), x.end(), a_net.input());
  std::copy(x.begin(), x.end(), b_net.input());
  SgdMomentum sgd_a(a_arena.total_count(), 0.05f, 0.9f), sgd_b(b_arena.total_count(), 0.05f, 0.9f);
  for (int step = 0; step < 3; ++step) {
    const LossResult a = a_net.forward_backward(e.stream, y.data(), batch);
    const LossResult b = b_net.forward_backward(e.stream, y.data(), batch);
    EXPECT_EQ(a.loss, b.loss) << "step " << step;
    ASSERT_EQ(0, std::memcmp(a_net.logits(), b_net.logits(), batch * SimpleCnn::kClasses * sizeof(float)));
    ASSERT_EQ(0, std::memcmp(a_arena.grads().data(), b_arena.grads().data(), a_arena.total_count() * sizeof(float)))
        << "step " << step;
    sgd_a.step(a_arena.params(), a_arena.grads());
    sgd_b.step(b_arena.params(), b_arena.grads());
  }
}

// ReLU fused as a post-op (the default) against separate ReLU passes.
TEST(SimpleCnn, FusedReluGivesTheSameBitsAsSeparateRelu) {
  NetworkOptions separate;
  separate.fuse_relu = false;
  expect_same_bits(NetworkOptions{}, separate, 17);
}

// The hand-written max pool (the default) against oneDNN's pooling.
TEST(SimpleCnn, PoolKernelGivesTheSameBitsAsOneDnnPooling) {
  NetworkOptions onednn;
  onednn.pool_kernel = false;
  expect_same_bits(NetworkOptions{}, onednn, 19);
}

// Whole-model finite differences on the oneDNN engine itself: central differences of the loss
// in a few coordinates of every tensor against the analytic gradient.
TEST(SimpleCnn, FiniteDifferenceGradientCheck) {
  Engine e;
  ParamArena arena = testing::make_arena(21);
  const size_t batch = 4;
  SimpleCnn net(e.eng, arena, batch);
  const auto x = testing::random_input(batch, 8);
  const auto y = testing::random_labels(batch, 9);
  std::copy(x.begin(), x.end(), net.input());
  net.forward_backward(e.stream, y.data(), batch);
  const std::vector<float> analytic(arena.grads().begin(), arena.grads().end());
  std::mt19937 gen(4);
  int checked = 0;
  for (const auto& spec : arena.specs()) {
    for (int k = 0; k < 4; ++k) {
      const size_t i = spec.offset + gen() % spec.count;
      float& w = arena.params()[i];
      const float saved = w, eps = 1e-3f;
      w = saved + eps;
      const double up = net.forward(e.stream, y.data()).loss;
      w = saved - eps;
      const double down = net.forward(e.stream, y.data()).loss;
      w = saved;
      const double numeric = (up - down) / (2.0 * eps);
      // float logits (~1e-7 relative) over 2*eps give ~1e-4 of noise; a small eps keeps ReLU and
      // max-pool kinks from being crossed.
      EXPECT_NEAR(analytic[i], numeric, 5e-4 + 2e-2 * std::fabs(numeric)) << spec.name << " element " << i;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 32);
}

TEST(SgdMomentum, TwoStepsByHand) {
  // v1 = g1 = 0.5; w1 = 1 - 0.1*0.5 = 0.95; v2 = 0.9*0.5 + (-1) = -0.55; w2 = 0.95 + 0.055 = 1.005
  SgdMomentum sgd(2, 0.1f, 0.9f);
  std::vector<float> w{1.0f, -2.0f}, g1{0.5f, 0.0f}, g2{-1.0f, 2.0f};
  sgd.step(w, g1);
  EXPECT_FLOAT_EQ(w[0], 0.95f);
  EXPECT_FLOAT_EQ(w[1], -2.0f);
  EXPECT_FLOAT_EQ(sgd.velocity()[0], 0.5f);
  sgd.step(w, g2);
  EXPECT_FLOAT_EQ(sgd.velocity()[0], -0.55f);
  EXPECT_FLOAT_EQ(w[0], 1.005f);
  EXPECT_FLOAT_EQ(sgd.velocity()[1], 2.0f);
  EXPECT_FLOAT_EQ(w[1], -2.2f);
}

// PyTorch's numbers: initial weights, one batch of 4, two SGD steps (lr 0.01, momentum 0.9).
TEST(SimpleCnnVsPyTorch, TwoStepsMatchFixture) {
  if (!testing::fixture_available())
    GTEST_SKIP() << "PyTorch fixture not found at " << testing::fixture_path() << ": "
                 << testing::fixture_unavailable_reason();
  Engine e;
  ParamArena arena;
  register_simple_cnn(arena);
  for (const auto& s : arena.specs()) {
    const auto v = testing::read_f32("init/" + s.name);
    ASSERT_EQ(v.size(), s.count) << s.name;
    std::copy(v.begin(), v.end(), arena.params().data() + s.offset);
  }
  const auto x = testing::read_f32("input");
  const auto y = testing::read_labels("labels");
  const size_t batch = y.size();
  SimpleCnn net(e.eng, arena, batch);
  SgdMomentum sgd(arena.total_count(), 0.01f, 0.9f);
  for (int step = 1; step <= 2; ++step) {
    const std::string g = "step" + std::to_string(step);
    std::copy(x.begin(), x.end(), net.input());
    const LossResult r = net.forward_backward(e.stream, y.data(), batch);
    const float want_loss = testing::read_scalar_f32(g + "/loss");
    EXPECT_NEAR(r.loss, want_loss, 1e-5 * std::max(1.0f, std::fabs(want_loss))) << g;
    if (step == 1) {
      const auto& L = net.layers();
      // conv1 applies ReLU as a post-op (fuse_relu): its dst is PyTorch's relu1.
      expect_close("step1 relu1", testing::to_plain(L[kConv1]->dst(), e), testing::read_f32("step1/act/relu1"), kRtol, kAtol);
      expect_close("step1 pool1", testing::to_plain(L[kPool1]->dst(), e), testing::read_f32("step1/act/pool1"), kRtol, kAtol);
      expect_close("step1 pool2", testing::to_plain(L[kPool2]->dst(), e), testing::read_f32("step1/act/pool2"), kRtol, kAtol);
      expect_close("step1 logits", testing::to_plain(L[kFc2]->dst(), e), testing::read_f32("step1/act/logits"), kRtol, kAtol);
      expect_close("step1 d conv2_out", testing::to_plain(L[kConv2]->diff_dst(), e), testing::read_f32("step1/dact/conv2_out"), kRtol, kAtol);
      expect_close("step1 d conv1_out", testing::to_plain(L[kConv1]->diff_dst(), e), testing::read_f32("step1/dact/conv1_out"), kRtol, kAtol);
    }
    for (const auto& s : arena.specs())
      expect_close(g + " grad " + s.name, testing::tensor(arena, s.name, true), testing::read_f32(g + "/grad/" + s.name),
                   kRtol, kAtol);
    sgd.step(arena.params(), arena.grads());
    for (const auto& s : arena.specs())
      expect_close(g + " after " + s.name, testing::tensor(arena, s.name, false),
                   testing::read_f32(g + "/after/" + s.name), kRtol, kAtol);
  }
}

}  // namespace
}  // namespace cifar
