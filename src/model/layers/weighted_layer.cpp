#include "cifar_mpi/model/layers/weighted_layer.hpp"

namespace cifar {

void WeightedLayer::forward(dnnl::stream& s) {
  src_.execute(s);
  weight_fwd_.execute(s);
  forward_primitive(s);
}

void WeightedLayer::forward_primitive(dnnl::stream& s) { fwd_bound_.execute(s); }

void WeightedLayer::bind_arguments() {
  const dnnl::memory& dweight = dweight_.outer();  // the arena's tensor
  grads_end_ = static_cast<const float*>(dweight.get_data_handle()) + dweight.get_desc().get_size() / sizeof(float);
  fwd_bound_ = BoundPrimitive(fwd_, {{DNNL_ARG_SRC, src_.inner()},
                                     {DNNL_ARG_WEIGHTS, weight_fwd_.inner()},
                                     {DNNL_ARG_BIAS, bias_},
                                     {DNNL_ARG_DST, dst_}});
  // dweight = f(src, diff_dst), dbias = sum of diff_dst   (=, oneDNN overwrites)
  bwd_weights_bound_ = BoundPrimitive(bwd_weights_, {{DNNL_ARG_SRC, src_.inner()},
                                                     {DNNL_ARG_DIFF_DST, backward_diff_dst()},
                                                     {DNNL_ARG_DIFF_WEIGHTS, dweight_.inner()},
                                                     {DNNL_ARG_DIFF_BIAS, dbias_}});
  // diff_src = g(diff_dst, weight)   (=)
  if (bwd_data_)
    bwd_data_bound_ = BoundPrimitive(*bwd_data_, {{DNNL_ARG_DIFF_DST, backward_diff_dst()},
                                                  {DNNL_ARG_WEIGHTS, weight_bwd_.inner()},
                                                  {DNNL_ARG_DIFF_SRC, diff_src_.inner()}});
}

void WeightedLayer::backward(dnnl::stream& s) {
  diff_dst_in_.execute(s);  // no-op unless the layer's backward reads diff_dst in another type
  backward_weights(s);
  backward_data(s);
}

void WeightedLayer::backward_with_pauses(dnnl::stream& s, const BackwardPause& pause) {
  diff_dst_in_.execute(s);
  backward_weights(s);
  s.wait();
  pause(grads_end_);
  backward_data(s);
}

void WeightedLayer::backward_weights(dnnl::stream& s) {
  backward_weights_primitive(s);
  dweight_.execute(s);
}

void WeightedLayer::backward_weights_primitive(dnnl::stream& s) { bwd_weights_bound_.execute(s); }

void WeightedLayer::backward_data(dnnl::stream& s) {
  if (bwd_data_) {
    weight_bwd_.execute(s);
    backward_data_primitive(s);
    diff_src_.execute(s);
  }
}

void WeightedLayer::backward_data_primitive(dnnl::stream& s) {
  if (bwd_data_) bwd_data_bound_.execute(s);
}

std::array<std::string, 3> WeightedLayer::primitive_impls() const {
  auto impl = [](const dnnl::primitive& p) -> std::string {
    const_dnnl_primitive_desc_t pd = nullptr;
    const char* info = nullptr;
    if (dnnl_primitive_get_primitive_desc(p.get(), &pd) != dnnl_success ||
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &info) != dnnl_success || !info)
      return "?";
    return info;
  };
  return {impl(fwd_), bwd_data_ ? impl(*bwd_data_) : "", impl(bwd_weights_)};
}

dnnl::primitive_attr WeightedLayer::forward_attr(bool relu) {
  dnnl::primitive_attr attr;
  if (relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    attr.set_post_ops(ops);
  }
  return attr;
}

std::vector<WeightedLayer::Reorder> WeightedLayer::active_reorders() {
  std::vector<Reorder> out;
  for (const Reorder r : {Reorder{"src", &src_}, Reorder{"weight fwd", &weight_fwd_},
                          Reorder{"diff_dst", &diff_dst_in_}, Reorder{"weight bwd", &weight_bwd_},
                          Reorder{"dweight", &dweight_}, Reorder{"diff_src", &diff_src_}})
    if (r.bridge->active()) out.push_back(r);
  return out;
}

}  // namespace cifar
