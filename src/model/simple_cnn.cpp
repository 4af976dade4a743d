// The reference network (PyTorch SimpleCNN):
//   input (B,3,32,32) -> conv1 3->32 k3 -> relu -> maxpool 2 -> conv2 32->64 k3 -> relu
//   -> maxpool 2 -> fc1 2304->128 -> relu -> fc2 128->10 -> softmax cross-entropy (mean).
// (Built as conv -> maxpool -> relu, which computes the same function more cheaply.)
#include <cmath>
#include <random>

#include "cifar_mpi/model/layers/conv2d.hpp"
#include "cifar_mpi/model/layers/inner_product.hpp"
#include "cifar_mpi/model/layers/max_pool.hpp"
#include "cifar_mpi/model/layers/relu.hpp"
#include "cifar_mpi/model/model_catalog.hpp"

namespace cifar {
namespace {

constexpr ConvShape kConvs[] = {{"conv1", 3, 32, 32, 3, 1, 0, true, true}, {"conv2", 32, 15, 64, 3, 1, 0, true, false}};

void register_tensors(ParamArena& arena) {
  arena.add("conv1.weight", {32, 3, 3, 3});
  arena.add("conv1.bias", {32});
  arena.add("conv2.weight", {64, 32, 3, 3});
  arena.add("conv2.bias", {64});
  arena.add("fc1.weight", {128, 64 * 6 * 6});
  arena.add("fc1.bias", {128});
  arena.add("fc2.weight", {10, 128});
  arena.add("fc2.bias", {10});
  arena.finalize();
}

// PyTorch's default initialisation for Conv2d and Linear: weight and bias both drawn from
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a = sqrt(5) gives the same bound).
// Deterministic for a seed (our own generator: the draws are not torch's).
void initialize(ParamArena& arena, uint64_t seed) {
  std::mt19937_64 gen(seed);
  const auto& specs = arena.specs();
  for (size_t i = 0; i < specs.size(); i += 2) {  // (weight, bias) pairs
    const auto& w = specs[i].shape;
    size_t fan_in = 1;
    for (size_t d = 1; d < w.size(); ++d) fan_in *= w[d];
    const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
    for (size_t t : {i, i + 1}) {
      float* p = arena.param(t);
      for (size_t k = 0; k < specs[t].count; ++k) {
        // 53 random bits -> [0, 1): independent of libstdc++'s distribution implementations.
        const double u = static_cast<double>(gen() >> 11) * 0x1.0p-53;
        p[k] = static_cast<float>((2.0 * u - 1.0) * bound);
      }
    }
  }
}

void build(const LayerContext& ctx, dnnl::memory& input, LayerList& layers) {
  using dnnl::memory;
  const NetworkOptions& options = ctx.options;
  const dnnl::engine& eng = ctx.eng;
  auto conv = [&](const ConvShape& shape, memory& src, memory* diff_src) {
    const std::string w = std::string(shape.name) + ".weight", b = std::string(shape.name) + ".bias";
    const auto algos = options.conv.find(shape.name);
    return std::make_unique<Conv2d>(shape.name, eng, src, diff_src, shape.out_channels, ConvGeometry{shape.kernel},
                                    ctx.param(w), ctx.param(b), ctx.grad(w), ctx.grad(b),
                                    algos == options.conv.end() ? ConvPassAlgos{} : algos->second, options.dtype,
                                    options.fuse_relu);
  };
  auto fc = [&](const char* name, memory& src, memory* diff_src, int out, ComputeDtype dtype, bool relu_after) {
    const std::string w = std::string(name) + ".weight", b = std::string(name) + ".bias";
    return std::make_unique<InnerProduct>(name, eng, src, diff_src, out, ctx.param(w), ctx.param(b), ctx.grad(w),
                                          ctx.grad(b), dtype, relu_after);
  };
  auto relu = [&](const char* name, Layer& prev) {
    return std::make_unique<Relu>(name, eng, prev.dst(), prev.diff_dst(), options.fuse_relu);
  };
  auto last = [&]() -> Layer& { return *layers.back(); };
  // ReLU runs after max pooling, on a quarter of the elements: ReLU is monotonic, so
  // maxpool(relu(x)) == relu(maxpool(x)) exactly, and the gradients agree (both are zero where
  // a window's maximum is <= 0) but for exact ties inside a window.
  // With fuse_relu the convolutions and fc1 apply ReLU as a post-op in their own pass and the
  // ReLU layers keep only the backward mask. Bitwise the same as unfused: max pooling of
  // relu(conv) equals relu of the max; where the pooled value is > 0 both pick the same argmax;
  // where it is <= 0 the mask zeroes the gradient before pooling scatters it.
  layers.push_back(conv(kConvs[0], input, nullptr));  // (B,32,30,30); no data gradient for the input
  layers.push_back(std::make_unique<MaxPool>("pool1", eng, last().dst(), last().diff_dst(), options.pool_kernel));  // (B,32,15,15)
  layers.push_back(relu("relu1", last()));
  layers.push_back(conv(kConvs[1], last().dst(), &last().diff_dst()));                          // (B,64,13,13)
  layers.push_back(std::make_unique<MaxPool>("pool2", eng, last().dst(), last().diff_dst(), options.pool_kernel));  // (B,64,6,6)
  layers.push_back(relu("relu2", last()));
  layers.push_back(fc("fc1", last().dst(), &last().diff_dst(), 128, options.dtype, options.fuse_relu));  // (B,128)
  layers.push_back(relu("relu3", last()));
  // fc2 stays fp32 in every compute type: it is 0.3 MFLOP a pass (128 x 128 x 10), so bf16 has
  // nothing to speed up, while it would add passes: its diff_dst (from the loss) is f32, which
  // oneDNN's bf16 backward passes read only after a cast, and fc1's dst is f32 anyway.
  layers.push_back(fc("fc2", last().dst(), &last().diff_dst(), 10, ComputeDtype::fp32, false));  // (B,10)
}

}  // namespace

const ModelSpec& simple_cnn_model() {
  static const ModelSpec spec{"simplecnn",
                              "the reference CNN: 2 conv, 2 fc; 0.32 M parameters in 8 tensors, 23.6 MFLOP a "
                              "training image",
                              register_tensors, initialize, build, kConvs};
  return spec;
}

}  // namespace cifar
