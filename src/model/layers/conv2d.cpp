#include "cifar_mpi/model/layers/conv2d.hpp"

namespace cifar {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

Conv2d::Conv2d(std::string name, const dnnl::engine& eng, memory& src, memory* diff_src, int out_channels,
               int kernel, float* weight, float* bias, float* dweight, float* dbias)
    : WeightedLayer(std::move(name)) {
  const auto sd = src.get_desc().dims();  // (B, C, H, W)
  const memory::dim B = sd[0], C = sd[1], H = sd[2], W = sd[3], O = out_channels, K = kernel;
  const memory::dims weight_dims{O, C, K, K}, bias_dims{O}, dst_dims{B, O, H - K + 1, W - K + 1};
  const memory::dims strides{1, 1}, padding{0, 0};

  auto any = [](const memory::dims& d) { return memory::desc(d, dt::f32, tag::any); };
  memory user_weight({weight_dims, dt::f32, tag::oihw}, eng, weight);
  memory user_dweight({weight_dims, dt::f32, tag::oihw}, eng, dweight);
  bias_ = memory({bias_dims, dt::f32, tag::x}, eng, bias);
  dbias_ = memory({bias_dims, dt::f32, tag::x}, eng, dbias);

  // Forward: oneDNN picks the src, weight and dst layouts it is fastest in.
  dnnl::convolution_forward::desc fwd_desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                           any(sd), any(weight_dims), bias_.get_desc(), any(dst_dims),
                                           strides, padding, padding);
  dnnl::convolution_forward::primitive_desc fwd_pd(fwd_desc, eng);
  fwd_ = dnnl::convolution_forward(fwd_pd);
  src_ = LayoutBridge(src, fwd_pd.src_desc(), eng, /*to_inner=*/true);
  weight_fwd_ = LayoutBridge(user_weight, fwd_pd.weights_desc(), eng, true);
  dst_ = memory(fwd_pd.dst_desc(), eng);
  diff_dst_ = memory(fwd_pd.dst_desc(), eng);

  // Backward weights, with the forward primitive as hint; reads the same src and diff_dst.
  dnnl::convolution_backward_weights::desc bw_desc(dnnl::algorithm::convolution_direct, fwd_pd.src_desc(),
                                                   any(weight_dims), dbias_.get_desc(), fwd_pd.dst_desc(),
                                                   strides, padding, padding);
  dnnl::convolution_backward_weights::primitive_desc bw_pd(bw_desc, eng, fwd_pd);
  bwd_weights_ = dnnl::convolution_backward_weights(bw_pd);
  dweight_ = LayoutBridge(user_dweight, bw_pd.diff_weights_desc(), eng, /*to_inner=*/false);

  if (diff_src) {
    dnnl::convolution_backward_data::desc bd_desc(dnnl::algorithm::convolution_direct, fwd_pd.src_desc(),
                                                  any(weight_dims), fwd_pd.dst_desc(), strides, padding, padding);
    dnnl::convolution_backward_data::primitive_desc bd_pd(bd_desc, eng, fwd_pd);
    bwd_data_ = dnnl::convolution_backward_data(bd_pd);
    weight_bwd_ = LayoutBridge(user_weight, bd_pd.weights_desc(), eng, true);
    diff_src_ = LayoutBridge(*diff_src, bd_pd.diff_src_desc(), eng, /*to_inner=*/false);
  }
}

}  // namespace cifar
