#include "cifar_mpi/model/layers/inner_product.hpp"

namespace cifar {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

InnerProduct::InnerProduct(std::string name, const dnnl::engine& eng, memory& src, memory* diff_src,
                           int out_features, float* weight, float* bias, float* dweight, float* dbias,
                           ComputeDtype dtype, bool relu_post_op)
    : WeightedLayer(std::move(name)) {
  const auto sd = src.get_desc().dims();
  const memory::dim B = sd[0], O = out_features;
  memory::dims weight_dims{O};
  weight_dims.insert(weight_dims.end(), sd.begin() + 1, sd.end());  // (O, I) or (O, C, H, W)
  const tag user_weight_tag = sd.size() == 4 ? tag::oihw : tag::oi;
  const memory::dims bias_dims{O}, dst_dims{B, O};
  // bf16: src and weights in bf16, dst f32, gradients of weight and bias f32 (the all-reduce and
  // update are f32, as under PyTorch's autocast). oneDNN 2.6's bf16 gemm inner product
  // (x64:gemm:jit on avx512_core_bf16) takes that in the forward pass but reads diff_dst in bf16
  // in both backward passes, so one cast of diff_dst (B x O) remains. An f32 dst leaves the next
  // layers (relu3, fc2) in f32 with no reorder; a bf16 dst would have needed two casts there
  // (fc2's src and data gradient), each a pass of its own (~0.07 ms at 2 threads, measured).
  const dt compute = dtype == ComputeDtype::bf16 ? dt::bf16 : dt::f32;
  auto any = [compute](const memory::dims& d) { return memory::desc(d, compute, tag::any); };

  memory user_weight({weight_dims, dt::f32, user_weight_tag}, eng, weight);
  memory user_dweight({weight_dims, dt::f32, user_weight_tag}, eng, dweight);
  bias_ = memory({bias_dims, dt::f32, tag::x}, eng, bias);
  dbias_ = memory({bias_dims, dt::f32, tag::x}, eng, dbias);
  const memory::desc dst_md(dst_dims, dt::f32, tag::nc), backward_diff_dst_md(dst_dims, compute, tag::nc);
  // Weights stay in PyTorch's plain layout: with format_tag::any oneDNN picks a blocked layout
  // for fc1 and then 1.2 MB of weights and their gradient are reordered every step (measured:
  // 0.4 ms a step on one thread), more than the plain-layout gemm loses. In bf16 the plain
  // layout is kept too (the bf16 gemm takes it): the reorder is then only the f32 -> bf16 cast.
  const memory::desc weight_md(weight_dims, compute, user_weight_tag);

  dnnl::inner_product_forward::primitive_desc fwd_pd(
      {dnnl::prop_kind::forward_training, any(sd), weight_md, bias_.get_desc(), dst_md},
      forward_attr(relu_post_op), eng);
  fwd_ = dnnl::inner_product_forward(fwd_pd);
  src_ = LayoutBridge(src, fwd_pd.src_desc(), eng, true);
  weight_fwd_ = LayoutBridge(user_weight, fwd_pd.weights_desc(), eng, true);
  dst_ = memory(dst_md, eng);
  diff_dst_ = memory(dst_md, eng);
  if (backward_diff_dst_md != dst_md) diff_dst_in_ = LayoutBridge(diff_dst_, backward_diff_dst_md, eng, true);

  dnnl::inner_product_backward_weights::primitive_desc bw_pd(
      {fwd_pd.src_desc(), user_weight.get_desc(), dbias_.get_desc(), backward_diff_dst_md}, eng, fwd_pd);
  bwd_weights_ = dnnl::inner_product_backward_weights(bw_pd);
  dweight_ = LayoutBridge(user_dweight, bw_pd.diff_weights_desc(), eng, false);

  if (diff_src) {
    dnnl::inner_product_backward_data::primitive_desc bd_pd({fwd_pd.src_desc(), weight_md, backward_diff_dst_md},
                                                            eng, fwd_pd);
    bwd_data_ = dnnl::inner_product_backward_data(bd_pd);
    // Bridged from the forward's weights, which the step does not change between the passes: in
    // bf16 the cast done for the forward serves here too (no second reorder of the weights); in
    // f32 both are the arena itself.
    weight_bwd_ = LayoutBridge(weight_fwd_.inner(), bd_pd.weights_desc(), eng, true);
    diff_src_ = LayoutBridge(*diff_src, bd_pd.diff_src_desc(), eng, false);
  }
  bind_arguments();
}

}  // namespace cifar
