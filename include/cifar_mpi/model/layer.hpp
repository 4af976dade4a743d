#pragma once
// A layer of the network on oneDNN primitives, built once for one batch size and executed every
// step (oneDNN's cnn_training_f32 pattern). Layers are chained by memory objects: a layer reads
// the previous layer's dst() and, in backward, writes its data gradient straight into the
// previous layer's diff_dst(). Activation layouts are chosen by oneDNN (format_tag::any);
// parameters and their gradients live in the ParamArena in PyTorch's plain layout, with a
// reorder only where a primitive wants a blocked weight layout.
#include <dnnl.hpp>

#include "cifar_mpi/model/bound_primitive.hpp"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace cifar {

// A pause inside a layer's backward, between two of its oneDNN primitives, where the caller may
// do other work (the gradient reducer advances its all-reduces there). grads_end: non-null when
// a parameter tensor's gradient became final just before this pause: one past its last float in
// the arena (the arena is in backward order, so everything before it is final too).
using BackwardPause = std::function<void(const float* grads_end)>;

class Layer {
 public:
  virtual ~Layer() = default;
  Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  virtual std::string name() const = 0;
  virtual void forward(dnnl::stream& s) = 0;
  // Forward for evaluation: the same but where training and inference differ (BatchNorm's
  // statistics); no backward follows.
  virtual void forward_inference(dnnl::stream& s) { forward(s); }
  // Writes (=, not +=) the data gradient into the previous layer's diff_dst (unless this is the
  // first layer, whose data gradient nobody needs) and the parameter gradients into the arena.
  virtual void backward(dnnl::stream& s) = 0;
  // The same passes, calling `pause` between them (the same bits: only the caller's work comes
  // in between). A layer of one primitive has no pause inside.
  virtual void backward_with_pauses(dnnl::stream& s, const BackwardPause& pause) {
    (void)pause;
    backward(s);
  }
  virtual bool has_params() const { return false; }
  // The layers a composite layer (a residual block) is made of, in forward order; none for a
  // plain layer. For what walks a model's layers without running them (FLOP counts, tables).
  virtual std::vector<const Layer*> parts() const { return {}; }

  dnnl::memory& dst() { return dst_; }
  dnnl::memory& diff_dst() { return diff_dst_; }

 protected:
  dnnl::memory dst_;       // output activation, layout chosen by the forward primitive
  dnnl::memory diff_dst_;  // gradient of the loss w.r.t. dst_, same layout
};

// A memory in the layout a primitive wants, bridged to a memory in another layout with a
// reorder that exists only when the two layouts differ (so the common case costs nothing).
class LayoutBridge {
 public:
  LayoutBridge() = default;
  // `outer` is the memory the rest of the program uses; `wanted` the primitive's layout.
  // to_inner: reorder outer -> inner (an input); otherwise inner -> outer (an output).
  LayoutBridge(const dnnl::memory& outer, const dnnl::memory::desc& wanted, const dnnl::engine& eng,
               bool to_inner);
  dnnl::memory& inner() { return inner_; }
  const dnnl::memory& outer() const { return outer_; }
  void execute(dnnl::stream& s);  // no-op when layouts agree
  bool active() const { return reorder_.bound(); }
  size_t bytes() const { return outer_.get_desc().get_size() + inner_.get_desc().get_size(); }  // one pass

 private:
  dnnl::memory outer_, inner_;
  BoundPrimitive reorder_;  // unbound when the layouts agree
};

}  // namespace cifar
