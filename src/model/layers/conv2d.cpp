#include "cifar_mpi/model/layers/conv2d.hpp"

namespace cifar {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

dnnl::algorithm dnnl_algorithm(ConvAlgo a) {
  return a == ConvAlgo::winograd ? dnnl::algorithm::convolution_winograd : dnnl::algorithm::convolution_direct;
}

}  // namespace

Conv2d::Conv2d(std::string name, const dnnl::engine& eng, memory& src, memory* diff_src, int out_channels,
               ConvGeometry geometry, float* weight, float* bias, float* dweight, float* dbias, ConvPassAlgos algos,
               ComputeDtype dtype, bool relu_post_op)
    : WeightedLayer(std::move(name)), algos_(algos), geometry_(geometry) {
  try {
    build(eng, src, diff_src, out_channels, geometry, weight, bias, dweight, dbias, dtype, relu_post_op);
  } catch (const dnnl::error& e) {
    throw ConvUnsupported(name_ + ": oneDNN offers no " + to_string(dtype) + " convolution with forward " +
                          conv_algo_name(algos.forward) + ", backward-data " + conv_algo_name(algos.backward_data) +
                          ", backward-weights " + conv_algo_name(algos.backward_weights) +
                          " for these shapes on this CPU (" + e.what() + ")");
  }
}

void Conv2d::build(const dnnl::engine& eng, memory& src, memory* diff_src, int out_channels, ConvGeometry g,
                   float* weight, float* bias, float* dweight, float* dbias, ComputeDtype dtype,
                   bool relu_post_op) {
  const ConvPassAlgos algos = algos_;
  const auto sd = src.get_desc().dims();  // (B, C, H, W)
  const memory::dim B = sd[0], C = sd[1], H = sd[2], W = sd[3], O = out_channels, K = g.kernel, S = g.stride,
                    P = g.pad;
  const memory::dims weight_dims{O, C, K, K}, bias_dims{O},
      dst_dims{B, O, (H + 2 * P - K) / S + 1, (W + 2 * P - K) / S + 1};
  const memory::dims strides{S, S}, padding{P, P};
  const dt compute = dtype == ComputeDtype::bf16 ? dt::bf16 : dt::f32;

  auto any = [](const memory::dims& d, dt t) { return memory::desc(d, t, tag::any); };
  memory user_weight({weight_dims, dt::f32, tag::oihw}, eng, weight);
  memory user_dweight({weight_dims, dt::f32, tag::oihw}, eng, dweight);
  // Without a bias the primitives get an empty bias descriptor (oneDNN's "no bias").
  if (bias) {
    bias_ = memory({bias_dims, dt::f32, tag::x}, eng, bias);
    dbias_ = memory({bias_dims, dt::f32, tag::x}, eng, dbias);
  }
  const memory::desc bias_desc = bias ? bias_.get_desc() : memory::desc();

  // Forward: oneDNN picks the src, weight and dst layouts it is fastest in (for this algorithm).
  dnnl::convolution_forward::desc fwd_desc(dnnl::prop_kind::forward_training, dnnl_algorithm(algos.forward),
                                           any(sd, compute), any(weight_dims, compute), bias_desc,
                                           any(dst_dims, compute), strides, padding, padding);
  dnnl::convolution_forward::primitive_desc fwd_pd(fwd_desc, forward_attr(relu_post_op), eng);
  fwd_ = dnnl::convolution_forward(fwd_pd);
  src_ = LayoutBridge(src, fwd_pd.src_desc(), eng, /*to_inner=*/true);
  weight_fwd_ = LayoutBridge(user_weight, fwd_pd.weights_desc(), eng, true);
  dst_ = memory(fwd_pd.dst_desc(), eng);
  diff_dst_ = memory(fwd_pd.dst_desc(), eng);

  // Backward weights, with the forward primitive as hint (its algorithm may differ: the hint
  // only steers layouts); reads the same src and diff_dst. Gradients are f32 even from bf16 data.
  dnnl::convolution_backward_weights::desc bw_desc(dnnl_algorithm(algos.backward_weights), fwd_pd.src_desc(),
                                                   any(weight_dims, dt::f32), bias_desc, fwd_pd.dst_desc(),
                                                   strides, padding, padding);
  dnnl::convolution_backward_weights::primitive_desc bw_pd(bw_desc, eng, fwd_pd);
  bwd_weights_ = dnnl::convolution_backward_weights(bw_pd);
  dweight_ = LayoutBridge(user_dweight, bw_pd.diff_weights_desc(), eng, /*to_inner=*/false);

  if (diff_src) {
    dnnl::convolution_backward_data::desc bd_desc(dnnl_algorithm(algos.backward_data), fwd_pd.src_desc(),
                                                  any(weight_dims, compute), fwd_pd.dst_desc(), strides, padding,
                                                  padding);
    dnnl::convolution_backward_data::primitive_desc bd_pd(bd_desc, eng, fwd_pd);
    bwd_data_ = dnnl::convolution_backward_data(bd_pd);
    weight_bwd_ = LayoutBridge(user_weight, bd_pd.weights_desc(), eng, true);
    diff_src_ = LayoutBridge(*diff_src, bd_pd.diff_src_desc(), eng, /*to_inner=*/false);
  }
  bind_arguments();
}

}  // namespace cifar
