#include "cifar_mpi/model/layers/max_pool.hpp"

#include <array>
#include <optional>

namespace cifar {

using dnnl::memory;

namespace {

// A layout the hand-written kernel reads: plain, or blocked by 8 or 16 on the channels, nothing
// padded.
struct KernelLayout {
  memory::format_tag tag;
  std::int64_t block;  // channels a block
};

// The kernel's layout of `d`, or none for any other (then oneDNN's pooling runs).
std::optional<KernelLayout> kernel_layout(const memory::desc& d) {
  const auto dims = d.dims();
  if (dims.size() != 4 || d.data_type() != memory::data_type::f32) return std::nullopt;
  constexpr std::array<KernelLayout, 3> layouts{
      {{memory::format_tag::abcd, 1}, {memory::format_tag::aBcd8b, 8}, {memory::format_tag::aBcd16b, 16}}};
  for (const KernelLayout& l : layouts)
    if (dims[1] % l.block == 0 && d == memory::desc(dims, d.data_type(), l.tag)) return l;
  return std::nullopt;
}

}  // namespace

MaxPool::MaxPool(std::string name, const dnnl::engine& eng, memory& src, memory& diff_src, bool use_kernel)
    : name_(std::move(name)), src_(src), diff_src_(diff_src) {
  const auto sd = src.get_desc().dims();
  const memory::dims dst_dims{sd[0], sd[1], sd[2] / 2, sd[3] / 2};
  const auto layout = kernel_layout(src.get_desc());
  if (use_kernel && layout && src.get_desc() == diff_src.get_desc()) {
    geometry_ = PoolGeometry{sd[0] * (sd[1] / layout->block), sd[2], sd[3], layout->block};
    // The same layout as src, so the next convolution sees what it would after oneDNN's pool.
    const memory::desc dst_desc(dst_dims, src.get_desc().data_type(), layout->tag);
    dst_ = memory(dst_desc, eng);
    diff_dst_ = memory(dst_desc, eng);
    workspace_ = memory(memory::desc({static_cast<memory::dim>(dst_desc.get_size() / sizeof(float))},
                                     memory::data_type::u8, memory::format_tag::a),
                        eng);
    return;
  }
  const memory::dims kernel{2, 2}, strides{2, 2}, padding{0, 0};
  const memory::desc dst_any(dst_dims, src.get_desc().data_type(), memory::format_tag::any);
  dnnl::pooling_forward::primitive_desc fwd_pd({dnnl::prop_kind::forward_training, dnnl::algorithm::pooling_max,
                                                src.get_desc(), dst_any, strides, kernel, padding, padding},
                                               eng);
  dst_ = memory(fwd_pd.dst_desc(), eng);
  diff_dst_ = memory(fwd_pd.dst_desc(), eng);
  workspace_ = memory(fwd_pd.workspace_desc(), eng);
  fwd_ = BoundPrimitive(dnnl::pooling_forward(fwd_pd),
                        {{DNNL_ARG_SRC, src_}, {DNNL_ARG_DST, dst_}, {DNNL_ARG_WORKSPACE, workspace_}});
  dnnl::pooling_backward::primitive_desc bwd_pd(
      {dnnl::algorithm::pooling_max, diff_src.get_desc(), fwd_pd.dst_desc(), strides, kernel, padding, padding}, eng,
      fwd_pd);
  // diff_src = scatter of diff_dst to each window's argmax, zero elsewhere (=)
  bwd_ = BoundPrimitive(
      dnnl::pooling_backward(bwd_pd),
      {{DNNL_ARG_DIFF_DST, diff_dst_}, {DNNL_ARG_WORKSPACE, workspace_}, {DNNL_ARG_DIFF_SRC, diff_src_}});
}

// The CPU stream is in order and runs each primitive before execute returns, so the kernel may read
// what the previous layer's primitive just wrote.
void MaxPool::forward(dnnl::stream& s) {
  if (!geometry_) return fwd_.execute(s);
  max_pool2x2_forward(static_cast<const float*>(src_.get_data_handle()), static_cast<float*>(dst_.get_data_handle()),
                      static_cast<std::uint8_t*>(workspace_.get_data_handle()), *geometry_);
}

void MaxPool::backward(dnnl::stream& s) {
  if (!geometry_) return bwd_.execute(s);
  max_pool2x2_backward(static_cast<const float*>(diff_dst_.get_data_handle()),
                       static_cast<const std::uint8_t*>(workspace_.get_data_handle()),
                       static_cast<float*>(diff_src_.get_data_handle()), *geometry_);
}

std::string MaxPool::implementation() const {
  return geometry_ ? "max_pool_kernel, " + std::to_string(geometry_->block) + "-channel blocks" : "oneDNN pooling";
}

}  // namespace cifar
