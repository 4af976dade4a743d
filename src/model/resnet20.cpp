// ResNet-20 for CIFAR-10 (He et al. 2016, section 4.2), with option-A shortcuts:
//   conv1 3->16 3x3 (no bias), bn1, relu
//   layer1..layer3: 3 basic blocks each at 16, 32, 64 channels; the first block of layer2 and
//     layer3 has stride 2 and the subsampling shortcut (x[:, :, ::2, ::2], channels zero-padded)
//   basic block: conv1 3x3 stride s (no bias), bn1, relu, conv2 3x3 (no bias), bn2, + shortcut, relu
//   global average pool over 8x8, fc 64->10 (bias)
// Tensor names are PyTorch's state_dict names for this layout (layer2.0.bn1.running_var, ...).
// 0.27 M parameters in 59 tensors, 19 BatchNorms' running statistics as buffers.
#include <array>
#include <cmath>
#include <random>
#include <string>

#include "cifar_mpi/model/layers/batch_norm.hpp"
#include "cifar_mpi/model/layers/conv2d.hpp"
#include "cifar_mpi/model/layers/global_avg_pool.hpp"
#include "cifar_mpi/model/layers/inner_product.hpp"
#include "cifar_mpi/model/layers/residual.hpp"
#include "cifar_mpi/model/model_catalog.hpp"

namespace cifar {
namespace {

constexpr int kStages = 3, kBlocks = 3;
constexpr int kPlanes[kStages] = {16, 32, 64};

std::string block_name(int stage, int block) { return "layer" + std::to_string(stage + 1) + "." + std::to_string(block); }

// Every convolution, in forward order: conv1, then per block its conv1 and conv2.
constexpr std::array<ConvShape, 1 + 2 * kStages * kBlocks> kConvs = {{
    {"conv1", 3, 32, 16, 3, 1, 1, false, true},
    {"layer1.0.conv1", 16, 32, 16, 3, 1, 1, false},  {"layer1.0.conv2", 16, 32, 16, 3, 1, 1, false},
    {"layer1.1.conv1", 16, 32, 16, 3, 1, 1, false},  {"layer1.1.conv2", 16, 32, 16, 3, 1, 1, false},
    {"layer1.2.conv1", 16, 32, 16, 3, 1, 1, false},  {"layer1.2.conv2", 16, 32, 16, 3, 1, 1, false},
    {"layer2.0.conv1", 16, 32, 32, 3, 2, 1, false},  {"layer2.0.conv2", 32, 16, 32, 3, 1, 1, false},
    {"layer2.1.conv1", 32, 16, 32, 3, 1, 1, false},  {"layer2.1.conv2", 32, 16, 32, 3, 1, 1, false},
    {"layer2.2.conv1", 32, 16, 32, 3, 1, 1, false},  {"layer2.2.conv2", 32, 16, 32, 3, 1, 1, false},
    {"layer3.0.conv1", 32, 16, 64, 3, 2, 1, false},  {"layer3.0.conv2", 64, 8, 64, 3, 1, 1, false},
    {"layer3.1.conv1", 64, 8, 64, 3, 1, 1, false},   {"layer3.1.conv2", 64, 8, 64, 3, 1, 1, false},
    {"layer3.2.conv1", 64, 8, 64, 3, 1, 1, false},   {"layer3.2.conv2", 64, 8, 64, 3, 1, 1, false},
}};

void add_conv(ParamArena& arena, const std::string& name, size_t out, size_t in) {
  arena.add(name + ".weight", {out, in, 3, 3});
}

void add_bn(ParamArena& arena, const std::string& name, size_t channels) {
  arena.add(name + ".weight", {channels});
  arena.add(name + ".bias", {channels});
  arena.add_buffer(name + ".running_mean", {channels}, 0.0f);
  arena.add_buffer(name + ".running_var", {channels}, 1.0f);
}

void register_tensors(ParamArena& arena) {
  add_conv(arena, "conv1", 16, 3);
  add_bn(arena, "bn1", 16);
  size_t in = 16;
  for (int stage = 0; stage < kStages; ++stage)
    for (int block = 0; block < kBlocks; ++block) {
      const std::string b = block_name(stage, block);
      const auto planes = static_cast<size_t>(kPlanes[stage]);
      add_conv(arena, b + ".conv1", planes, in);
      add_bn(arena, b + ".bn1", planes);
      add_conv(arena, b + ".conv2", planes, planes);
      add_bn(arena, b + ".bn2", planes);
      in = planes;
    }
  arena.add("fc.weight", {10, 64});
  arena.add("fc.bias", {10});
  arena.finalize();
}

// As the reference CIFAR ResNet code: kaiming_normal_ (fan_in, gain sqrt 2) for the convolutions'
// and fc's weights, BatchNorm weight 1 and bias 0, fc's bias PyTorch's default U(-1/sqrt 64,
// 1/sqrt 64). Our own generator and Box-Muller: deterministic for a seed, not torch's draws.
void initialize(ParamArena& arena, uint64_t seed) {
  std::mt19937_64 gen(seed);
  auto uniform = [&gen] { return static_cast<double>(gen() >> 11) * 0x1.0p-53; };  // [0, 1), 53 bits
  const double two_pi = 6.283185307179586;
  for (size_t t = 0; t < arena.specs().size(); ++t) {
    const TensorSpec& s = arena.specs()[t];
    float* p = arena.param(t);
    const bool bn = s.name.find(".bn") != std::string::npos || s.name.rfind("bn1.", 0) == 0;
    if (bn) {
      std::fill_n(p, s.count, s.name.ends_with(".weight") ? 1.0f : 0.0f);
    } else if (s.name == "fc.bias") {
      const double bound = 1.0 / std::sqrt(64.0);
      for (size_t k = 0; k < s.count; ++k) p[k] = static_cast<float>((2.0 * uniform() - 1.0) * bound);
    } else {
      size_t fan_in = 1;
      for (size_t d = 1; d < s.shape.size(); ++d) fan_in *= s.shape[d];
      const double sd = std::sqrt(2.0 / static_cast<double>(fan_in));
      for (size_t k = 0; k < s.count; ++k) {
        const double u1 = 1.0 - uniform(), u2 = uniform();  // u1 in (0, 1]
        p[k] = static_cast<float>(sd * std::sqrt(-2.0 * std::log(u1)) * std::cos(two_pi * u2));
      }
    }
  }
  for (const TensorSpec& s : arena.buffer_specs())
    std::fill_n(arena.buffers().data() + s.offset, s.count, s.name.ends_with("running_var") ? 1.0f : 0.0f);
}

void build(const LayerContext& ctx, dnnl::memory& input, LayerList& layers) {
  using dnnl::memory;
  const NetworkOptions& options = ctx.options;
  auto conv = [&](const ConvShape& shape, memory& src, memory* diff_src) {
    const std::string w = std::string(shape.name) + ".weight";
    const auto algos = options.conv.find(shape.name);
    return std::make_unique<Conv2d>(shape.name, ctx.eng, src, diff_src, shape.out_channels,
                                    ConvGeometry{shape.kernel, shape.stride, shape.pad}, ctx.param(w), nullptr,
                                    ctx.grad(w), nullptr, algos == options.conv.end() ? ConvPassAlgos{} : algos->second,
                                    options.dtype);
  };
  auto bn = [&](const std::string& name, Layer& prev, bool relu) {
    return std::make_unique<BatchNorm>(name, ctx.eng, prev.dst(), prev.diff_dst(), ctx.param(name + ".weight"),
                                       ctx.param(name + ".bias"), ctx.grad(name + ".weight"), ctx.grad(name + ".bias"),
                                       ctx.buffer(name + ".running_mean"), ctx.buffer(name + ".running_var"), relu,
                                       options.sum_across_replicas);
  };
  layers.push_back(conv(kConvs[0], input, nullptr));  // (B,16,32,32); no data gradient for the input
  layers.push_back(bn("bn1", *layers.back(), /*relu=*/true));
  size_t c = 1;
  for (int stage = 0; stage < kStages; ++stage)
    for (int block = 0; block < kBlocks; ++block) {
      const std::string name = block_name(stage, block);
      Layer& prev = *layers.back();
      LayerList body;
      body.push_back(conv(kConvs[c++], prev.dst(), &prev.diff_dst()));
      body.push_back(bn(name + ".bn1", *body.back(), true));
      body.push_back(conv(kConvs[c++], body.back()->dst(), &body.back()->diff_dst()));
      body.push_back(bn(name + ".bn2", *body.back(), false));
      const bool subsample = stage > 0 && block == 0;
      layers.push_back(std::make_unique<Residual>(name, ctx.eng, prev.dst(), prev.diff_dst(), std::move(body),
                                                  subsample ? Residual::Shortcut::subsample
                                                            : Residual::Shortcut::identity));
    }
  layers.push_back(std::make_unique<GlobalAvgPool>("avgpool", ctx.eng, layers.back()->dst(), layers.back()->diff_dst()));
  layers.push_back(std::make_unique<InnerProduct>("fc", ctx.eng, layers.back()->dst(), &layers.back()->diff_dst(), 10,
                                                  ctx.param("fc.weight"), ctx.param("fc.bias"), ctx.grad("fc.weight"),
                                                  ctx.grad("fc.bias"), ComputeDtype::fp32, false));
}

}  // namespace

const ModelSpec& resnet20_model() {
  static const ModelSpec spec{"resnet20",
                              "He et al.'s CIFAR ResNet-20 with BatchNorm; 0.27 M parameters in 59 tensors, 242 "
                              "MFLOP a training image",
                              register_tensors, initialize, build, kConvs};
  return spec;
}

}  // namespace cifar
