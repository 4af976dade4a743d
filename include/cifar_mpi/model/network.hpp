#pragma once
// A model (model_catalog.hpp) built for one batch size: its layers in forward order over the
// shared ParamArena, with the input, the logits, and forward/backward passes that call the
// gradient hooks at every pause of backward. Networks of different batch sizes built over one
// arena share the weights (a second one serves an epoch's final partial batch and the test
// set's remainder). Nothing here knows which model it runs.
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "cifar_mpi/model/conv_algo.hpp"
#include "cifar_mpi/model/layer.hpp"
#include "cifar_mpi/model/model_catalog.hpp"
#include "cifar_mpi/model/param_arena.hpp"
#include "cifar_mpi/model/softmax_cross_entropy.hpp"

namespace cifar {

// Called during backward when a prefix of the gradient arena is final: `ready` floats from
// offset 0 (the arena is in backward order, so the prefix grows layer by layer).
using GradsReadyHook = std::function<void(size_t ready)>;
// Called at every pause of backward: after each layer, and inside a layer between its oneDNN
// primitives (Layer::backward_with_pauses). What it does there must not touch the network.
using BackwardPollHook = std::function<void()>;

class Network {
 public:
  // Every model reads CIFAR-10 images and predicts its classes (the trainer checks that the data
  // set agrees; the model does not depend on the data stage).
  static constexpr size_t kInputChannels = 3, kInputSide = 32, kClasses = 10;

  // options: each convolution's algorithms (default direct) and the compute type (default f32).
  // Throws ConvUnsupported (layers/conv2d.hpp) if oneDNN lacks an asked algorithm for a layer.
  Network(const ModelSpec& model, const dnnl::engine& eng, ParamArena& arena, size_t batch,
          const NetworkOptions& options = {});
  Network(const Network&) = delete;  // its layers' pause refers to it: it stays where it was built
  Network& operator=(const Network&) = delete;
  const ModelSpec& model() const { return model_; }
  const NetworkOptions& options() const { return options_; }

  size_t batch() const { return batch_; }
  float* input() { return static_cast<float*>(input_.get_data_handle()); }  // (B, 3, 32, 32) NCHW
  const float* logits() const { return logits_; }                           // (B, 10) after forward

  // Forward only, in inference mode (evaluation): fills logits, returns loss and correct count.
  LossResult forward(dnnl::stream& s, const int32_t* labels);
  // Forward (training mode: BatchNorm normalises over this batch and updates its running
  // statistics) and backward: parameter gradients (=) in the arena, averaged over
  // grad_scale_batch. on_grads_ready is called as soon as a tensor's gradient is final (before
  // the layer's data gradient), poll at every other pause of backward.
  LossResult forward_backward(dnnl::stream& s, const int32_t* labels, size_t grad_scale_batch,
                              const GradsReadyHook& on_grads_ready = {}, const BackwardPollHook& poll = {});

  const LayerList& layers() const { return layers_; }

  // Wall-clock spans of the last forward_backward, per layer in forward order (for the trace).
  // Recorded every step into preallocated arrays: two clock reads a layer, off any log path.
  struct Span {
    double begin = 0, end = 0;
  };
  const std::vector<Span>& forward_spans() const { return forward_spans_; }
  const std::vector<Span>& backward_spans() const { return backward_spans_; }

 private:
  const ModelSpec& model_;
  size_t batch_;
  ParamArena& arena_;
  NetworkOptions options_;
  dnnl::memory input_;
  LayerList layers_;  // forward order
  std::vector<Span> forward_spans_, backward_spans_;
  float* logits_ = nullptr;
  float* dlogits_ = nullptr;
  // The pause handed to the layers, built once (no allocation inside a step); it reads the
  // hooks of the pass under way.
  BackwardPause pause_;
  const GradsReadyHook* on_grads_ready_ = nullptr;
  const BackwardPollHook* poll_ = nullptr;
};

}  // namespace cifar
