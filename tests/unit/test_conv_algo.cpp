// The convolution algorithms and compute types besides the default (direct, f32): Winograd
// against PyTorch's two-step fixture and against direct over five steps, per-pass mixtures
// against the plain C++ reference, the start-up probe, and bf16 against the reference with a
// tolerance for bf16's 8-bit mantissa.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "cifar_mpi/model/conv_probe.hpp"
#include "cifar_mpi/model/layers/conv2d.hpp"
#include "cifar_mpi/model/layers/inner_product.hpp"
#include "cifar_mpi/optim/sgd_momentum.hpp"
#include "engine_fixture.hpp"
#include "fixture_reader.hpp"
#include "test_util.hpp"

namespace cifar {
namespace {

using testing::Engine;
using testing::expect_close;

// Winograd transforms add rounding of their own: the brief's bound is 1e-4 from PyTorch.
constexpr double kWinoRtol = 1e-4, kWinoAtol = 1e-4;

// The network, or nothing where oneDNN lacks an asked algorithm on this CPU.
std::optional<SimpleCnn> try_network(Engine& e, ParamArena& arena, size_t batch, const NetworkOptions& options) {
  try {
    return std::optional<SimpleCnn>(std::in_place, e.eng, arena, batch, options);
  } catch (const ConvUnsupported&) {
    return std::nullopt;
  }
}

void load_fixture_init(ParamArena& arena) {
  register_simple_cnn(arena);
  for (const auto& s : arena.specs()) {
    const auto v = testing::read_f32("init/" + s.name);
    ASSERT_EQ(v.size(), s.count) << s.name;
    std::copy(v.begin(), v.end(), arena.params().data() + s.offset);
  }
}

TEST(ConvAlgoWinograd, TwoStepsMatchPyTorchFixture) {
  if (!testing::fixture_available())
    GTEST_SKIP() << "PyTorch fixture not found at " << testing::fixture_path() << ": "
                 << testing::fixture_unavailable_reason();
  Engine e;
  ParamArena arena;
  load_fixture_init(arena);
  const auto x = testing::read_f32("input");
  const auto y = testing::read_labels("labels");
  const size_t batch = y.size();
  auto net = try_network(e, arena, batch, uniform_conv_options(ConvAlgo::winograd, ComputeDtype::fp32, simple_cnn_model_spec().convs));
  if (!net) GTEST_SKIP() << "oneDNN has no Winograd convolution for these shapes on this CPU";
  for (const auto* l : {net->layers()[0].get(), net->layers()[3].get()})
    std::cout << l->name() << ": " << dynamic_cast<const Conv2d&>(*l).impl_names()[0] << "\n";
  SgdMomentum sgd(arena.total_count(), 0.01f, 0.9f);
  for (int step = 1; step <= 2; ++step) {
    const std::string g = "step" + std::to_string(step);
    std::copy(x.begin(), x.end(), net->input());
    const LossResult r = net->forward_backward(e.stream, y.data(), batch);
    const float want_loss = testing::read_scalar_f32(g + "/loss");
    EXPECT_NEAR(r.loss, want_loss, 1e-4 * std::max(1.0f, std::fabs(want_loss))) << g;
    for (const auto& s : arena.specs())
      expect_close(g + " grad " + s.name, testing::tensor(arena, s.name, true), testing::read_f32(g + "/grad/" + s.name),
                   kWinoRtol, kWinoAtol);
    sgd.step(arena.params(), arena.grads());
    for (const auto& s : arena.specs())
      expect_close(g + " after " + s.name, testing::tensor(arena, s.name, false),
                   testing::read_f32(g + "/after/" + s.name), kWinoRtol, kWinoAtol);
  }
}

// Five SGD steps on one batch of 32: Winograd's weights stay within 1e-4 of direct's (which
// match PyTorch's to 1e-5, SimpleCnnVsPyTorch), so errors do not grow step over step.
TEST(ConvAlgoWinograd, FiveStepsStayWithinToleranceOfDirect) {
  Engine e;
  const size_t batch = 32;
  ParamArena direct_arena = testing::make_arena(5), wino_arena = testing::make_arena(5);
  SimpleCnn direct(e.eng, direct_arena, batch);
  auto wino = try_network(e, wino_arena, batch, uniform_conv_options(ConvAlgo::winograd, ComputeDtype::fp32, simple_cnn_model_spec().convs));
  if (!wino) GTEST_SKIP() << "oneDNN has no Winograd convolution for these shapes on this CPU";
  const auto x = testing::random_input(batch, 12);
  const auto y = testing::random_labels(batch, 13);
  SgdMomentum sgd_d(direct_arena.total_count(), 0.01f, 0.9f), sgd_w(wino_arena.total_count(), 0.01f, 0.9f);
  for (int step = 1; step <= 5; ++step) {
    std::copy(x.begin(), x.end(), direct.input());
    std::copy(x.begin(), x.end(), wino->input());
    const float ld = direct.forward_backward(e.stream, y.data(), batch).loss;
    const float lw = wino->forward_backward(e.stream, y.data(), batch).loss;
    EXPECT_NEAR(lw, ld, 1e-4 * std::max(1.0f, std::fabs(ld))) << "step " << step;
    sgd_d.step(direct_arena.params(), direct_arena.grads());
    sgd_w.step(wino_arena.params(), wino_arena.grads());
  }
  for (const auto& s : direct_arena.specs())
    expect_close("after 5 steps " + s.name, testing::tensor(wino_arena, s.name, false),
                 testing::tensor(direct_arena, s.name, false), kWinoRtol, kWinoAtol);
}

// Every per-pass mixture the probe may choose (forward of one algorithm, a backward pass of the
// other) against the plain C++ reference.
TEST(ConvAlgoMixed, EveryPassCombinationMatchesReference) {
  const size_t batch = 7;
  const auto x = testing::random_input(batch, 5);
  const auto y = testing::random_labels(batch, 6);
  int built = 0;
  for (ConvAlgo f : {ConvAlgo::direct, ConvAlgo::winograd})
    for (ConvAlgo bd : {ConvAlgo::direct, ConvAlgo::winograd})
      for (ConvAlgo bw : {ConvAlgo::direct, ConvAlgo::winograd}) {
        Engine e;
        ParamArena arena = testing::make_arena(11);
        NetworkOptions o;
        o.conv["conv2"] = {f, bd, bw};
        auto net = try_network(e, arena, batch, o);
        const std::string what = std::string("conv2 ") + conv_algo_name(f) + "/" + conv_algo_name(bd) + "/" +
                                 conv_algo_name(bw);
        if (!net) {
          std::cout << what << ": not offered by oneDNN here\n";
          continue;
        }
        ++built;
        std::copy(x.begin(), x.end(), net->input());
        const LossResult r = net->forward_backward(e.stream, y.data(), batch);
        reference::Grads grads;
        const float ref_loss = reference::forward_backward(testing::to_reference(arena), x.data(), y.data(),
                                                           static_cast<int>(batch), nullptr, nullptr, &grads);
        EXPECT_NEAR(r.loss, ref_loss, 1e-4 * std::max(1.0f, std::fabs(ref_loss))) << what;
        for (const auto& [name, want] : reference::named_tensors(grads))
          expect_close(what + " grad " + name, testing::tensor(arena, name, true), *want, kWinoRtol, kWinoAtol);
      }
  EXPECT_GE(built, 1);  // all direct is always there
}

TEST(ConvProbe, TimesEveryConvolutionAndChoosesAnOfferedCombination) {
  Engine e;
  const auto probes = probe_conv_algorithms(e.eng, simple_cnn_model_spec().convs, 16, ComputeDtype::fp32, 1, 2);
  ASSERT_EQ(probes.size(), simple_cnn_model_spec().convs.size());
  NetworkOptions o;
  for (size_t i = 0; i < probes.size(); ++i) {
    const auto& p = probes[i];
    std::cout << p.summary() << "\n";
    EXPECT_EQ(p.layer, simple_cnn_model_spec().convs[i].name);
    ASSERT_FALSE(p.rows.empty());
    EXPECT_EQ(p.rows[0].forward, ConvAlgo::direct);
    EXPECT_GT(p.rows[0].forward_ms, 0);
    EXPECT_GT(p.direct_ms, 0);
    EXPECT_GT(p.chosen_ms, 0);
    EXPECT_LE(p.chosen_ms, p.direct_ms);
    o.conv[p.layer] = p.chosen;
  }
  ParamArena arena = testing::make_arena(2);
  SimpleCnn net(e.eng, arena, 16, o);  // what the probe chose can be built
  EXPECT_EQ(net.options().conv.size(), probes.size());
}

}  // namespace
}  // namespace cifar

namespace cifar {
namespace {

// bf16 keeps 8 bits of mantissa (relative rounding 2^-9 ~ 2e-3 per value), but a gradient that
// is a small sum of cancelling terms (random images and labels) loses far more: measured on
// Zen 5, 6-11% of the tensor's norm for conv1..fc1, 0.4% for fc2. The bound catches a wrong
// layout or a missing reorder (errors of order 1), not bf16's own rounding; FiveStepsTrackFp32
// is the training-level check.
constexpr double kBf16RelL2 = 0.25;

TEST(ComputeDtypeBf16, ForwardBackwardCloseToReference) {
  if (!cpu_has_native_bf16()) GTEST_SKIP() << "this CPU has neither avx512_bf16 nor AMX";
  Engine e;
  const size_t batch = 16;
  ParamArena arena = testing::make_arena(11);
  NetworkOptions o;
  o.dtype = ComputeDtype::bf16;
  SimpleCnn net(e.eng, arena, batch, o);
  for (size_t i : {0, 3})
    EXPECT_EQ(dynamic_cast<const Conv2d&>(*net.layers()[i]).impl_names()[0].rfind("ref:", 0), std::string::npos);
  EXPECT_EQ(net.layers()[0]->dst().get_desc().data_type(), dnnl::memory::data_type::bf16);
  // fc1 runs in bf16 too (reads pool2's bf16 output and bf16 weights, writes f32; its backward
  // reads diff_dst cast to bf16), on a non-reference kernel in every pass; fc2 stays f32, so the
  // loss reads f32 logits. The gradient loop below covers both.
  auto& fc1 = dynamic_cast<InnerProduct&>(*net.layers()[6]);
  auto& fc2 = dynamic_cast<InnerProduct&>(*net.layers()[8]);
  ASSERT_EQ(fc1.name(), "fc1");
  ASSERT_EQ(fc2.name(), "fc2");
  EXPECT_EQ(fc1.wanted_src_desc().data_type(), dnnl::memory::data_type::bf16);
  EXPECT_EQ(fc1.dst().get_desc().data_type(), dnnl::memory::data_type::f32);
  const auto fc1_reorders = fc1.active_reorders();
  EXPECT_TRUE(std::any_of(fc1_reorders.begin(), fc1_reorders.end(),
                          [](const auto& r) { return std::string(r.role) == "diff_dst"; }));
  for (const auto& impl : fc1.impl_names()) EXPECT_EQ(impl.rfind("ref:", 0), std::string::npos) << "fc1: " << impl;
  EXPECT_EQ(fc2.wanted_src_desc().data_type(), dnnl::memory::data_type::f32);
  EXPECT_EQ(fc2.dst().get_desc().data_type(), dnnl::memory::data_type::f32);
  EXPECT_TRUE(fc2.active_reorders().empty());  // f32 from fc1, f32 to the loss: nothing to cast
  const auto x = testing::random_input(batch, 5);
  const auto y = testing::random_labels(batch, 6);
  std::copy(x.begin(), x.end(), net.input());
  const LossResult r = net.forward_backward(e.stream, y.data(), batch);
  reference::Grads grads;
  const float ref_loss = reference::forward_backward(testing::to_reference(arena), x.data(), y.data(),
                                                     static_cast<int>(batch), nullptr, nullptr, &grads);
  EXPECT_NEAR(r.loss, ref_loss, 1e-2 * std::max(1.0f, std::fabs(ref_loss)));
  // Per element, bf16 rounding of activations can move a max-pool window's argmax and with it a
  // gradient contribution, so the gradients are compared as tensors: relative L2 error.
  for (const auto& [name, want] : reference::named_tensors(grads)) {
    const auto got = testing::tensor(arena, name, true);
    ASSERT_EQ(got.size(), want->size()) << name;
    double err = 0, norm = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      err += (double(got[i]) - (*want)[i]) * (double(got[i]) - (*want)[i]);
      norm += double((*want)[i]) * (*want)[i];
    }
    const double rel = std::sqrt(err / norm);
    std::cout << "bf16 grad " << name << ": relative L2 error " << rel << "\n";
    EXPECT_LT(rel, kBf16RelL2) << name;
  }
}

// Five steps of training in bf16 reduce the loss on a fixed batch as fp32 does, and the weights
// (fp32 master copies) stay near fp32's.
TEST(ComputeDtypeBf16, FiveStepsTrackFp32) {
  if (!cpu_has_native_bf16()) GTEST_SKIP() << "this CPU has neither avx512_bf16 nor AMX";
  Engine e;
  const size_t batch = 32;
  ParamArena a32 = testing::make_arena(5), a16 = testing::make_arena(5);
  NetworkOptions o;
  o.dtype = ComputeDtype::bf16;
  SimpleCnn n32(e.eng, a32, batch), n16(e.eng, a16, batch, o);
  const auto x = testing::random_input(batch, 12);
  const auto y = testing::random_labels(batch, 13);
  SgdMomentum s32(a32.total_count(), 0.01f, 0.9f), s16(a16.total_count(), 0.01f, 0.9f);
  float first = 0, l16 = 0, l32 = 0;
  for (int step = 1; step <= 5; ++step) {
    std::copy(x.begin(), x.end(), n32.input());
    std::copy(x.begin(), x.end(), n16.input());
    l32 = n32.forward_backward(e.stream, y.data(), batch).loss;
    l16 = n16.forward_backward(e.stream, y.data(), batch).loss;
    if (step == 1) first = l16;
    s32.step(a32.params(), a32.grads());
    s16.step(a16.params(), a16.grads());
  }
  EXPECT_LT(l16, first);
  EXPECT_NEAR(l16, l32, 2e-2 * std::max(1.0f, std::fabs(l32)));
  for (const auto& s : a32.specs())
    expect_close("bf16 after 5 steps " + s.name, testing::tensor(a16, s.name, false), testing::tensor(a32, s.name, false),
                 1e-2, 1e-3);
}

TEST(ComputeDtypeBf16, WinogradIsRefusedWithTheLayerNamed) {
  if (!cpu_has_native_bf16()) GTEST_SKIP() << "this CPU has neither avx512_bf16 nor AMX";
  Engine e;
  ParamArena arena = testing::make_arena(1);
  try {
    SimpleCnn net(e.eng, arena, 4, uniform_conv_options(ConvAlgo::winograd, ComputeDtype::bf16, simple_cnn_model_spec().convs));
    GTEST_SKIP() << "oneDNN offers bf16 Winograd here";
  } catch (const ConvUnsupported& err) {
    EXPECT_NE(std::string(err.what()).find("conv1: oneDNN offers no bf16"), std::string::npos) << err.what();
  }
}

}  // namespace
}  // namespace cifar
