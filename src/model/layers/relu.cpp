#include "cifar_mpi/model/layers/relu.hpp"

namespace cifar {

Relu::Relu(std::string name, const dnnl::engine& eng, dnnl::memory& src, dnnl::memory& diff_src,
           bool applied_upstream)
    : name_(std::move(name)), applied_upstream_(applied_upstream) {
  const auto md = src.get_desc();
  const auto alg = dnnl::algorithm::eltwise_relu_use_dst_for_bwd;
  dnnl::eltwise_forward::primitive_desc fwd_pd({dnnl::prop_kind::forward_training, alg, md, 0.f, 0.f}, eng);
  dnnl::eltwise_backward::primitive_desc bwd_pd({alg, md, md, 0.f, 0.f}, eng, fwd_pd);
  dst_ = src;            // in place
  diff_dst_ = diff_src;  // in place
  fwd_ = BoundPrimitive(dnnl::eltwise_forward(fwd_pd), {{DNNL_ARG_SRC, dst_}, {DNNL_ARG_DST, dst_}});
  // diff_src = dst > 0 ? diff_dst : 0   (=, in place)
  bwd_ = BoundPrimitive(dnnl::eltwise_backward(bwd_pd),
                        {{DNNL_ARG_DST, dst_}, {DNNL_ARG_DIFF_DST, diff_dst_}, {DNNL_ARG_DIFF_SRC, diff_dst_}});
}

void Relu::forward(dnnl::stream& s) {
  if (!applied_upstream_) fwd_.execute(s);
}

void Relu::backward(dnnl::stream& s) {
  bwd_.execute(s);
}

}  // namespace cifar
