#include "cifar_mpi/model/layers/max_pool.hpp"

namespace cifar {

using dnnl::memory;

MaxPool::MaxPool(std::string name, const dnnl::engine& eng, memory& src, memory& diff_src)
    : name_(std::move(name)), src_(src), diff_src_(diff_src) {
  const auto sd = src.get_desc().dims();
  const memory::dims dst_dims{sd[0], sd[1], sd[2] / 2, sd[3] / 2};
  const memory::dims kernel{2, 2}, strides{2, 2}, padding{0, 0};
  const memory::desc dst_any(dst_dims, src.get_desc().data_type(), memory::format_tag::any);
  dnnl::pooling_forward::primitive_desc fwd_pd(
      {dnnl::prop_kind::forward_training, dnnl::algorithm::pooling_max, src.get_desc(), dst_any, strides, kernel,
       padding, padding},
      eng);
  dst_ = memory(fwd_pd.dst_desc(), eng);
  diff_dst_ = memory(fwd_pd.dst_desc(), eng);
  workspace_ = memory(fwd_pd.workspace_desc(), eng);
  fwd_ = BoundPrimitive(dnnl::pooling_forward(fwd_pd),
                        {{DNNL_ARG_SRC, src_}, {DNNL_ARG_DST, dst_}, {DNNL_ARG_WORKSPACE, workspace_}});
  dnnl::pooling_backward::primitive_desc bwd_pd(
      {dnnl::algorithm::pooling_max, diff_src.get_desc(), fwd_pd.dst_desc(), strides, kernel, padding, padding},
      eng, fwd_pd);
  // diff_src = scatter of diff_dst to each window's argmax, zero elsewhere   (=)
  bwd_ = BoundPrimitive(dnnl::pooling_backward(bwd_pd),
                        {{DNNL_ARG_DIFF_DST, diff_dst_}, {DNNL_ARG_WORKSPACE, workspace_}, {DNNL_ARG_DIFF_SRC, diff_src_}});
}

void MaxPool::forward(dnnl::stream& s) { fwd_.execute(s); }

void MaxPool::backward(dnnl::stream& s) { bwd_.execute(s); }

}  // namespace cifar
