#include "cifar_mpi/model/layers/global_avg_pool.hpp"

namespace cifar {

using dnnl::memory;

GlobalAvgPool::GlobalAvgPool(std::string name, const dnnl::engine& eng, memory& src, memory& diff_src)
    : name_(std::move(name)) {
  const auto sd = src.get_desc().dims();
  const memory::dims kernel{sd[2], sd[3]}, strides{sd[2], sd[3]}, padding{0, 0};
  const memory::desc dst_any({sd[0], sd[1], 1, 1}, src.get_desc().data_type(), memory::format_tag::any);
  const auto alg = dnnl::algorithm::pooling_avg_exclude_padding;
  dnnl::pooling_forward::primitive_desc fwd_pd(
      {dnnl::prop_kind::forward_training, alg, src.get_desc(), dst_any, strides, kernel, padding, padding}, eng);
  dst_ = memory(fwd_pd.dst_desc(), eng);
  diff_dst_ = memory(fwd_pd.dst_desc(), eng);
  fwd_ = BoundPrimitive(dnnl::pooling_forward(fwd_pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst_}});
  dnnl::pooling_backward::primitive_desc bwd_pd(
      {alg, diff_src.get_desc(), fwd_pd.dst_desc(), strides, kernel, padding, padding}, eng, fwd_pd);
  bwd_ = BoundPrimitive(dnnl::pooling_backward(bwd_pd), {{DNNL_ARG_DIFF_DST, diff_dst_}, {DNNL_ARG_DIFF_SRC, diff_src}});
}

}  // namespace cifar
