#include "cifar_mpi/model/network.hpp"

#include "cifar_mpi/util/clock.hpp"

namespace cifar {

Network::Network(const ModelSpec& model, const dnnl::engine& eng, ParamArena& arena, size_t batch,
                 const NetworkOptions& options)
    : model_(model), batch_(batch), arena_(arena), options_(options) {
  using dnnl::memory;
  const auto B = static_cast<memory::dim>(batch);
  const auto C = static_cast<memory::dim>(kInputChannels), S = static_cast<memory::dim>(kInputSide);
  input_ = memory({{B, C, S, S}, memory::data_type::f32, memory::format_tag::nchw}, eng);
  model.build(LayerContext{eng, arena, options_}, input_, layers_);
  logits_ = static_cast<float*>(layers_.back()->dst().get_data_handle());
  dlogits_ = static_cast<float*>(layers_.back()->diff_dst().get_data_handle());
  forward_spans_.resize(layers_.size());
  backward_spans_.resize(layers_.size());
  pause_ = [this](const float* grads_end) {
    if (grads_end && *on_grads_ready_)
      (*on_grads_ready_)(static_cast<size_t>(grads_end - arena_.grads().data()));  // (which may poll too)
    else if (*poll_)
      (*poll_)();
  };
}

LossResult Network::forward(dnnl::stream& s, const int32_t* labels) {
  for (auto& layer : layers_) layer->forward_inference(s);
  s.wait();
  return softmax_cross_entropy(logits_, labels, batch_, kClasses, nullptr, batch_);
}

LossResult Network::forward_backward(dnnl::stream& s, const int32_t* labels, size_t grad_scale_batch,
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
  on_grads_ready_ = &on_grads_ready;
  poll_ = &poll;
  const bool paused = on_grads_ready || poll;
  for (size_t i = layers_.size(); i-- > 0;) {
    backward_spans_[i].begin = now_seconds();
    if (paused)
      layers_[i]->backward_with_pauses(s, pause_);
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
