#include "cifar_mpi/model/simple_cnn.hpp"

#include <cmath>
#include <random>

#include "cifar_mpi/model/layers/conv2d.hpp"
#include "cifar_mpi/model/layers/inner_product.hpp"
#include "cifar_mpi/model/layers/max_pool.hpp"
#include "cifar_mpi/model/layers/relu.hpp"
#include "cifar_mpi/util/clock.hpp"

namespace cifar {

void register_simple_cnn(ParamArena& arena) {
  arena.add("conv1.weight", {32, 3, 3, 3});
  arena.add("conv1.bias", {32});
  arena.add("conv2.weight", {64, 32, 3, 3});
  arena.add("conv2.bias", {64});
  arena.add("fc1.weight", {128, 64 * 6 * 6});
  arena.add("fc1.bias", {128});
  arena.add("fc2.weight", {SimpleCnn::kClasses, 128});
  arena.add("fc2.bias", {SimpleCnn::kClasses});
  arena.finalize();
}

void init_pytorch_default(ParamArena& arena, uint64_t seed) {
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

SimpleCnn::SimpleCnn(const dnnl::engine& eng, ParamArena& arena, size_t batch, const NetworkOptions& options)
    : batch_(batch), arena_(arena), options_(options) {
  using dnnl::memory;
  const auto B = static_cast<memory::dim>(batch);
  input_ = memory({{B, 3, 32, 32}, memory::data_type::f32, memory::format_tag::nchw}, eng);
  auto idx = [&](const char* name) {
    const auto& specs = arena.specs();
    for (size_t i = 0; i < specs.size(); ++i)
      if (specs[i].name == name) return i;
    throw std::logic_error(std::string("arena lacks ") + name);
  };
  auto conv = [&](const ConvShape& shape, memory& src, memory* diff_src) {
    const size_t w = idx((std::string(shape.name) + ".weight").c_str()), b = w + 1;
    const auto algos = options.conv.find(shape.name);
    return std::make_unique<Conv2d>(shape.name, eng, src, diff_src, shape.out_channels, shape.kernel, arena.param(w),
                                    arena.param(b), arena.grad(w), arena.grad(b),
                                    algos == options.conv.end() ? ConvPassAlgos{} : algos->second, options.dtype,
                                    options.fuse_relu);
  };
  auto fc = [&](const char* name, memory& src, memory* diff_src, int out, ComputeDtype dtype, bool relu_after) {
    const size_t w = idx((std::string(name) + ".weight").c_str()), b = w + 1;
    return std::make_unique<InnerProduct>(name, eng, src, diff_src, out, arena.param(w), arena.param(b),
                                          arena.grad(w), arena.grad(b), dtype, relu_after);
  };
  auto relu = [&](const char* name, Layer& prev) {
    return std::make_unique<Relu>(name, eng, prev.dst(), prev.diff_dst(), options.fuse_relu);
  };
  auto last = [&]() -> Layer& { return *layers_.back(); };
  // ReLU runs after max pooling, on a quarter of the elements: ReLU is monotonic, so
  // maxpool(relu(x)) == relu(maxpool(x)) exactly, and the gradients agree (both are zero where
  // a window's maximum is <= 0) but for exact ties inside a window.
  // With fuse_relu the convolutions and fc1 apply ReLU as a post-op in their own pass and the
  // ReLU layers keep only the backward mask. Bitwise the same as unfused: max pooling of
  // relu(conv) equals relu of the max; where the pooled value is > 0 both pick the same argmax;
  // where it is <= 0 the mask zeroes the gradient before pooling scatters it.
  layers_.push_back(conv(kConvs[0], input_, nullptr));  // (B,32,30,30); no data gradient for the input
  layers_.push_back(std::make_unique<MaxPool>("pool1", eng, last().dst(), last().diff_dst()));  // (B,32,15,15)
  layers_.push_back(relu("relu1", last()));
  layers_.push_back(conv(kConvs[1], last().dst(), &last().diff_dst()));                     // (B,64,13,13)
  layers_.push_back(std::make_unique<MaxPool>("pool2", eng, last().dst(), last().diff_dst()));  // (B,64,6,6)
  layers_.push_back(relu("relu2", last()));
  layers_.push_back(fc("fc1", last().dst(), &last().diff_dst(), 128, options.dtype, options.fuse_relu));  // (B,128)
  layers_.push_back(relu("relu3", last()));
  // fc2 stays fp32 in every compute type: it is 0.3 MFLOP a pass (128 x 128 x 10), so bf16 has
  // nothing to speed up, while it would add passes: its diff_dst (from the loss) is f32, which
  // oneDNN's bf16 backward passes read only after a cast, and fc1's dst is f32 anyway.
  layers_.push_back(fc("fc2", last().dst(), &last().diff_dst(), 10, ComputeDtype::fp32, false));  // (B,10)
  logits_ = static_cast<float*>(last().dst().get_data_handle());
  dlogits_ = static_cast<float*>(last().diff_dst().get_data_handle());

  // After a parameter layer's backward, the arena prefix up to the end of its weight is final
  // (weight is registered before bias, so in backward order it comes after it).
  for (const auto& layer : layers_) {
    size_t ready = 0;
    if (layer->has_params()) {
      const auto& w = arena.spec(layer->name() + ".weight");
      ready = w.offset + w.count;
    }
    grads_ready_after_.push_back(ready);
  }
  forward_spans_.resize(layers_.size());
  backward_spans_.resize(layers_.size());
}

LossResult SimpleCnn::forward(dnnl::stream& s, const int32_t* labels) {
  for (auto& layer : layers_) layer->forward(s);
  s.wait();
  return softmax_cross_entropy(logits_, labels, batch_, kClasses, nullptr, batch_);
}

LossResult SimpleCnn::forward_backward(dnnl::stream& s, const int32_t* labels, size_t grad_scale_batch,
                                       const GradsReadyHook& on_grads_ready, const BackwardPollHook& poll) {
  // oneDNN's CPU engine with the OpenMP runtime executes synchronously, so a clock read after
  // execute() is the layer's end; the stream wait is kept where results are read.
  for (size_t i = 0; i < layers_.size(); ++i) {
    forward_spans_[i].begin = now_seconds();
    layers_[i]->forward(s);
    forward_spans_[i].end = now_seconds();
  }
  s.wait();
  const LossResult r = softmax_cross_entropy(logits_, labels, batch_, kClasses, dlogits_, grad_scale_batch);
  size_t i = layers_.size();
  const BackwardPause pause = [&](bool params_final) {
    if (params_final && grads_ready_after_[i] && on_grads_ready)
      on_grads_ready(grads_ready_after_[i]);  // (which may poll too)
    else if (poll)
      poll();
  };
  while (i-- > 0) {
    backward_spans_[i].begin = now_seconds();
    if (on_grads_ready || poll)
      layers_[i]->backward_with_pauses(s, pause);
    else
      layers_[i]->backward(s);
    backward_spans_[i].end = now_seconds();
    if (poll && i > 0) {
      s.wait();
      poll();
    }
  }
  s.wait();
  return r;
}

}  // namespace cifar
