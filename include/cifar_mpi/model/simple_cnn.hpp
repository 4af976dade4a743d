#pragma once
// The reference network (PyTorch SimpleCNN):
//   input (B,3,32,32) -> conv1 3->32 k3 -> relu -> maxpool 2 -> conv2 32->64 k3 -> relu
//   -> maxpool 2 -> fc1 2304->128 -> relu -> fc2 128->10 -> softmax cross-entropy (mean).
// (Built as conv -> maxpool -> relu, which computes the same function more cheaply.)
// Parameters live in a ParamArena shared by every SimpleCnn built over it; a SimpleCnn holds the
// primitives and activations for one batch size (a second one serves an epoch's final partial
// batch and the test set's remainder, with the same weights).
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "cifar_mpi/model/conv_algo.hpp"
#include "cifar_mpi/model/layer.hpp"
#include "cifar_mpi/model/param_arena.hpp"
#include "cifar_mpi/model/softmax_cross_entropy.hpp"

namespace cifar {

// Registers conv1.weight, conv1.bias, ..., fc2.bias (PyTorch names and shapes) and finalizes.
void register_simple_cnn(ParamArena& arena);

// PyTorch's default initialisation for Conv2d and Linear: weight and bias both drawn from
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a = sqrt(5) gives the same bound).
// Deterministic for a seed (our own generator: the draws are not torch's).
void init_pytorch_default(ParamArena& arena, uint64_t seed);

// Called during backward when a prefix of the gradient arena is final: `ready` floats from
// offset 0 (the arena is in backward order, so the prefix grows layer by layer).
using GradsReadyHook = std::function<void(size_t ready)>;
// Called at every pause of backward: after each layer, and inside a layer between its oneDNN
// primitives (Layer::backward_with_pauses). What it does there must not touch the network.
using BackwardPollHook = std::function<void()>;

class SimpleCnn {
 public:
  // The network's input and output, stated by the model itself (the trainer checks that the data
  // set agrees; the model does not depend on the data stage).
  static constexpr size_t kInputChannels = 3, kInputSide = 32, kClasses = 10;

  // The convolutions' shapes (what probe_conv_algorithms times): src (B, in, side, side),
  // out channels, kernel; the first layer computes no data gradient.
  struct ConvShape {
    const char* name;
    int in_channels, side, out_channels, kernel;
    bool first;
  };
  static constexpr ConvShape kConvs[] = {{"conv1", 3, 32, 32, 3, true}, {"conv2", 32, 15, 64, 3, false}};

  // options: each convolution's algorithms (default direct) and the compute type (default f32).
  // Throws ConvUnsupported (layers/conv2d.hpp) if oneDNN lacks an asked algorithm for a layer.
  SimpleCnn(const dnnl::engine& eng, ParamArena& arena, size_t batch, const NetworkOptions& options = {});
  const NetworkOptions& options() const { return options_; }

  size_t batch() const { return batch_; }
  float* input() { return static_cast<float*>(input_.get_data_handle()); }  // (B, 3, 32, 32) NCHW
  const float* logits() const { return logits_; }                           // (B, 10) after forward

  // Forward only (evaluation): fills logits, returns loss and correct count.
  LossResult forward(dnnl::stream& s, const int32_t* labels);
  // Forward and backward: parameter gradients (=) in the arena, averaged over grad_scale_batch.
  // on_grads_ready is called as soon as a layer's parameter gradients are final (before its data
  // gradient), poll at every other pause of backward.
  LossResult forward_backward(dnnl::stream& s, const int32_t* labels, size_t grad_scale_batch,
                              const GradsReadyHook& on_grads_ready = {}, const BackwardPollHook& poll = {});

  const std::vector<std::unique_ptr<Layer>>& layers() const { return layers_; }

  // Wall-clock spans of the last forward_backward, per layer in forward order (for the trace).
  // Recorded every step into preallocated arrays: two clock reads a layer, off any log path.
  struct Span {
    double begin = 0, end = 0;
  };
  const std::vector<Span>& forward_spans() const { return forward_spans_; }
  const std::vector<Span>& backward_spans() const { return backward_spans_; }

 private:
  size_t batch_;
  ParamArena& arena_;
  NetworkOptions options_;
  dnnl::memory input_;
  std::vector<std::unique_ptr<Layer>> layers_;  // forward order
  std::vector<size_t> grads_ready_after_;       // per layer: arena prefix final after its backward
  std::vector<Span> forward_spans_, backward_spans_;
  float* logits_ = nullptr;
  float* dlogits_ = nullptr;
};

}  // namespace cifar
