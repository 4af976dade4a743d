#include "cifar_mpi/model/layers/weighted_layer.hpp"

namespace cifar {

void WeightedLayer::forward(dnnl::stream& s) {
  src_.execute(s);
  weight_fwd_.execute(s);
  fwd_.execute(s, {{DNNL_ARG_SRC, src_.inner()},
                   {DNNL_ARG_WEIGHTS, weight_fwd_.inner()},
                   {DNNL_ARG_BIAS, bias_},
                   {DNNL_ARG_DST, dst_}});
}

void WeightedLayer::backward(dnnl::stream& s) {
  backward_weights(s);
  backward_data(s);
}

void WeightedLayer::backward_weights(dnnl::stream& s) {
  // dweight = f(src, diff_dst), dbias = sum of diff_dst   (=, oneDNN overwrites)
  bwd_weights_.execute(s, {{DNNL_ARG_SRC, src_.inner()},
                           {DNNL_ARG_DIFF_DST, diff_dst_},
                           {DNNL_ARG_DIFF_WEIGHTS, dweight_.inner()},
                           {DNNL_ARG_DIFF_BIAS, dbias_}});
  dweight_.execute(s);
}

void WeightedLayer::backward_data(dnnl::stream& s) {
  if (bwd_data_) {
    // diff_src = g(diff_dst, weight)   (=)
    weight_bwd_.execute(s);
    bwd_data_->execute(s, {{DNNL_ARG_DIFF_DST, diff_dst_},
                           {DNNL_ARG_WEIGHTS, weight_bwd_.inner()},
                           {DNNL_ARG_DIFF_SRC, diff_src_.inner()}});
    diff_src_.execute(s);
  }
}

}  // namespace cifar
