#include "cifar_mpi/model/layers/residual.hpp"

#include <cstring>

namespace cifar {

using dnnl::memory;
using tag = memory::format_tag;

namespace {

memory::desc plain_desc(const memory::desc& d) { return {d.dims(), d.data_type(), tag::nchw}; }

void zero(memory& m) { std::memset(m.get_data_handle(), 0, m.get_desc().get_size()); }

// dst = src0 + src1 (in src0's layout), with a ReLU post-op when asked.
BoundPrimitive binary_add(const dnnl::engine& eng, const memory& src0, const memory& src1, const memory& dst,
                          bool relu) {
  dnnl::primitive_attr attr;
  if (relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    attr.set_post_ops(ops);
  }
  dnnl::binary::primitive_desc pd({dnnl::algorithm::binary_add, src0.get_desc(), src1.get_desc(), dst.get_desc()},
                                  attr, eng);
  return BoundPrimitive(dnnl::binary(pd), {{DNNL_ARG_SRC_0, src0}, {DNNL_ARG_SRC_1, src1}, {DNNL_ARG_DST, dst}});
}

}  // namespace

Residual::Residual(std::string name, const dnnl::engine& eng, memory& src, memory& diff_src,
                   std::vector<std::unique_ptr<Layer>> body, Shortcut shortcut)
    : name_(std::move(name)), body_(std::move(body)), shortcut_(shortcut) {
  Layer& last = *body_.back();
  const memory::desc out = last.dst().get_desc(), in = src.get_desc();
  dst_ = memory(out, eng);
  diff_dst_ = memory(out, eng);
  memory shortcut_out, shortcut_grad;  // the shortcut's output and its gradient w.r.t. src, before bridging
  if (shortcut_ == Shortcut::identity) {
    shortcut_out = src;
    shortcut_grad = last.diff_dst();
  } else {
    const auto id = in.dims(), od = out.dims();
    pad_ = static_cast<int>((od[1] - id[1]) / 2);
    src_to_plain_ = LayoutBridge(src, plain_desc(in), eng, /*to_inner=*/true);
    src_plain_ = src_to_plain_.inner();
    shortcut_plain_ = memory(plain_desc(out), eng);
    diff_to_plain_ = LayoutBridge(last.diff_dst(), plain_desc(out), eng, true);
    diff_plain_ = diff_to_plain_.inner();
    src_grad_plain_ = memory(plain_desc(in), eng);
    // The padded channels and the odd rows and columns are zero for good: the loops write the rest.
    zero(shortcut_plain_);
    zero(src_grad_plain_);
    shortcut_out = shortcut_plain_;
    shortcut_grad = src_grad_plain_;
  }
  shortcut_in_ = LayoutBridge(shortcut_out, out, eng, true);
  src_grad_in_ = LayoutBridge(shortcut_grad, in, eng, true);
  add_relu_ = binary_add(eng, last.dst(), shortcut_in_.inner(), dst_, /*relu=*/true);
  gradient_add_ = binary_add(eng, diff_src, src_grad_in_.inner(), diff_src, false);  // in place

  // The body's last diff_dst = diff_dst where dst > 0 (the ReLU after the add).
  const auto alg = dnnl::algorithm::eltwise_relu_use_dst_for_bwd;
  dnnl::eltwise_forward::primitive_desc hint({dnnl::prop_kind::forward_training, alg, out, 0.f, 0.f}, eng);
  dnnl::eltwise_backward::primitive_desc bwd({alg, last.diff_dst().get_desc(), out, 0.f, 0.f}, eng, hint);
  relu_backward_ = BoundPrimitive(dnnl::eltwise_backward(bwd), {{DNNL_ARG_DST, dst_},
                                                                {DNNL_ARG_DIFF_DST, diff_dst_},
                                                                {DNNL_ARG_DIFF_SRC, last.diff_dst()}});
}

std::vector<const Layer*> Residual::parts() const {
  std::vector<const Layer*> out;
  for (const auto& l : body_) out.push_back(l.get());
  return out;
}

void Residual::subsample_forward() {
  const auto d = src_plain_.get_desc().dims(), o = shortcut_plain_.get_desc().dims();
  const long B = d[0], C = d[1], H = d[2], W = d[3], OC = o[1], OH = o[2], OW = o[3];
  const auto* x = static_cast<const float*>(src_plain_.get_data_handle());
  auto* y = static_cast<float*>(shortcut_plain_.get_data_handle());
#pragma omp parallel for collapse(2)
  for (long b = 0; b < B; ++b)
    for (long c = 0; c < C; ++c) {
      const float* xp = x + (b * C + c) * H * W;
      float* yp = y + (b * OC + c + pad_) * OH * OW;
      for (long i = 0; i < OH; ++i)
        for (long j = 0; j < OW; ++j) yp[i * OW + j] = xp[2 * i * W + 2 * j];
    }
}

void Residual::subsample_backward() {
  const auto d = src_grad_plain_.get_desc().dims(), o = diff_plain_.get_desc().dims();
  const long B = d[0], C = d[1], H = d[2], W = d[3], OC = o[1], OH = o[2], OW = o[3];
  const auto* dy = static_cast<const float*>(diff_plain_.get_data_handle());
  auto* dx = static_cast<float*>(src_grad_plain_.get_data_handle());
#pragma omp parallel for collapse(2)
  for (long b = 0; b < B; ++b)
    for (long c = 0; c < C; ++c) {
      const float* dyp = dy + (b * OC + c + pad_) * OH * OW;
      float* dxp = dx + (b * C + c) * H * W;
      for (long i = 0; i < OH; ++i)
        for (long j = 0; j < OW; ++j) dxp[2 * i * W + 2 * j] = dyp[i * OW + j];
    }
}

void Residual::add_shortcut(dnnl::stream& s) {
  if (shortcut_ == Shortcut::subsample) {
    src_to_plain_.execute(s);
    s.wait();
    subsample_forward();
  }
  shortcut_in_.execute(s);
  add_relu_.execute(s);
}

void Residual::add_shortcut_gradient(dnnl::stream& s) {
  if (shortcut_ == Shortcut::subsample) {
    diff_to_plain_.execute(s);
    s.wait();
    subsample_backward();
  }
  src_grad_in_.execute(s);
  gradient_add_.execute(s);
}

void Residual::forward(dnnl::stream& s) {
  for (auto& l : body_) l->forward(s);
  add_shortcut(s);
}

void Residual::forward_inference(dnnl::stream& s) {
  for (auto& l : body_) l->forward_inference(s);
  add_shortcut(s);
}

void Residual::backward(dnnl::stream& s) {
  relu_backward_.execute(s);
  for (size_t i = body_.size(); i-- > 0;) body_[i]->backward(s);
  add_shortcut_gradient(s);
}

void Residual::backward_with_pauses(dnnl::stream& s, const BackwardPause& pause) {
  relu_backward_.execute(s);
  for (size_t i = body_.size(); i-- > 0;) {
    body_[i]->backward_with_pauses(s, pause);
    s.wait();
    pause(nullptr);
  }
  add_shortcut_gradient(s);
}

}  // namespace cifar
