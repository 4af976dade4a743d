#include "cifar_mpi/model/layers/batch_norm.hpp"

#include <algorithm>
#include <cmath>

namespace cifar {

using dnnl::memory;
using flags = dnnl::normalization_flags;

BatchNorm::BatchNorm(std::string name, const dnnl::engine& eng, memory& src, memory& diff_src, float* weight,
                     float* bias, float* dweight, float* dbias, float* running_mean, float* running_var, bool relu,
                     std::function<void(std::span<double>)> sync)
    : name_(std::move(name)),
      running_mean_(running_mean),
      running_var_(running_var),
      sync_(std::move(sync)),
      weight_(weight),
      dweight_(dweight),
      dbias_(dbias) {
  const memory::desc data = src.get_desc();
  const auto dims = data.dims();
  channels_ = static_cast<size_t>(dims[1]);
  count_ = static_cast<double>(dims[0]) * static_cast<double>(dims[2]) * static_cast<double>(dims[3]);
  grads_end_ = dweight + channels_;
  const memory::desc vec({dims[1]}, memory::data_type::f32, memory::format_tag::x);
  memory w(vec, eng, weight), b(vec, eng, bias), dw(vec, eng, dweight), db(vec, eng, dbias);
  memory rm(vec, eng, running_mean), rv(vec, eng, running_var);
  mean_ = memory(vec, eng);
  variance_ = memory(vec, eng);
  const flags scale_shift = flags::use_scale | flags::use_shift;
  const flags train_flags = relu ? scale_shift | flags::fuse_norm_relu : scale_shift;

  dnnl::batch_normalization_forward::primitive_desc train_pd(
      {dnnl::prop_kind::forward_training, data, kEpsilon, train_flags}, eng);
  dst_ = memory(train_pd.dst_desc(), eng);
  diff_dst_ = memory(train_pd.dst_desc(), eng);
  std::unordered_map<int, memory> train_args{{DNNL_ARG_SRC, src},   {DNNL_ARG_DST, dst_},          {DNNL_ARG_SCALE, w},
                                             {DNNL_ARG_SHIFT, b},   {DNNL_ARG_MEAN, mean_},        {DNNL_ARG_VARIANCE, variance_}};
  memory workspace;
  if (relu) {  // the ReLU's mask, for backward
    workspace = memory(train_pd.workspace_desc(), eng);
    train_args[DNNL_ARG_WORKSPACE] = workspace;
  }
  training_ = BoundPrimitive(dnnl::batch_normalization_forward(train_pd), train_args);

  dnnl::batch_normalization_forward::primitive_desc infer_pd(
      {dnnl::prop_kind::forward_inference, data, kEpsilon, train_flags | flags::use_global_stats}, eng);
  inference_ = BoundPrimitive(dnnl::batch_normalization_forward(infer_pd),
                              {{DNNL_ARG_SRC, src},
                               {DNNL_ARG_DST, dst_},
                               {DNNL_ARG_SCALE, w},
                               {DNNL_ARG_SHIFT, b},
                               {DNNL_ARG_MEAN, rm},
                               {DNNL_ARG_VARIANCE, rv}});

  // diff_src, diff_weight (=), diff_bias (=) from src, the batch's statistics and diff_dst.
  // (oneDNN 2.6's backward pass refuses to run without the shift among its arguments, though it
  // does not read it.)
  dnnl::batch_normalization_backward::primitive_desc bwd_pd(
      {dnnl::prop_kind::backward, diff_src.get_desc(), data, kEpsilon, train_flags}, eng, train_pd);
  std::unordered_map<int, memory> bwd_args{{DNNL_ARG_SRC, src},           {DNNL_ARG_MEAN, mean_},
                                           {DNNL_ARG_VARIANCE, variance_}, {DNNL_ARG_DIFF_DST, diff_dst_},
                                           {DNNL_ARG_SCALE, w},            {DNNL_ARG_SHIFT, b},
                                           {DNNL_ARG_DIFF_SRC, diff_src},
                                           {DNNL_ARG_DIFF_SCALE, dw},      {DNNL_ARG_DIFF_SHIFT, db}};
  if (relu) bwd_args[DNNL_ARG_WORKSPACE] = workspace;
  backward_ = BoundPrimitive(dnnl::batch_normalization_backward(bwd_pd), bwd_args);
  if (!sync_) return;

  // --sync-bn: the same passes with the global batch's statistics as inputs, and dx's correction.
  global_mean_ = memory(vec, eng);
  global_variance_ = memory(vec, eng);
  const flags global_flags = train_flags | flags::use_global_stats;
  dnnl::batch_normalization_forward::primitive_desc global_pd(
      {dnnl::prop_kind::forward_training, data, kEpsilon, global_flags}, eng);
  std::unordered_map<int, memory> global_args{{DNNL_ARG_SRC, src},   {DNNL_ARG_DST, dst_},
                                              {DNNL_ARG_SCALE, w},   {DNNL_ARG_SHIFT, b},
                                              {DNNL_ARG_MEAN, global_mean_}, {DNNL_ARG_VARIANCE, global_variance_}};
  memory global_workspace;
  if (relu) {
    global_workspace = memory(global_pd.workspace_desc(), eng);
    global_args[DNNL_ARG_WORKSPACE] = global_workspace;
  }
  global_training_ = BoundPrimitive(dnnl::batch_normalization_forward(global_pd), global_args);
  dnnl::batch_normalization_backward::primitive_desc global_bwd_pd(
      {dnnl::prop_kind::backward, diff_src.get_desc(), data, kEpsilon, global_flags}, eng, global_pd);
  bwd_args[DNNL_ARG_MEAN] = global_mean_;
  bwd_args[DNNL_ARG_VARIANCE] = global_variance_;
  if (relu) bwd_args[DNNL_ARG_WORKSPACE] = global_workspace;
  global_backward_ = BoundPrimitive(dnnl::batch_normalization_backward(global_bwd_pd), bwd_args);

  // dx += x * scale + shift, per channel, in two jit passes: an inference BatchNorm with mean 0 and
  // variance 1 is that affine function (its scale takes sqrt(1 + eps) in), into a buffer of its own
  // (not dy's: a residual block reads its dy again for the shortcut); then a binary add into dx. (One
  // binary multiply with the add and the sum as post-ops is oneDNN 2.6's reference code on a
  // blocked layout: 160 ms where these take ~1 ms.)
  scale_ = memory(vec, eng);
  shift_ = memory(vec, eng);
  memory zero(vec, eng), one(vec, eng);
  std::fill_n(static_cast<float*>(zero.get_data_handle()), channels_, 0.0f);
  std::fill_n(static_cast<float*>(one.get_data_handle()), channels_, 1.0f);
  dnnl::batch_normalization_forward::primitive_desc affine_pd(
      {dnnl::prop_kind::forward_inference, data, kEpsilon, scale_shift | flags::use_global_stats}, eng);
  const memory affine(affine_pd.dst_desc(), eng);
  affine_ = BoundPrimitive(dnnl::batch_normalization_forward(affine_pd), {{DNNL_ARG_SRC, src},
                                                                         {DNNL_ARG_DST, affine},
                                                                         {DNNL_ARG_SCALE, scale_},
                                                                         {DNNL_ARG_SHIFT, shift_},
                                                                         {DNNL_ARG_MEAN, zero},
                                                                         {DNNL_ARG_VARIANCE, one}});
  dnnl::binary::primitive_desc add_pd(
      {dnnl::algorithm::binary_add, diff_src.get_desc(), affine.get_desc(), diff_src.get_desc()}, eng);
  add_ = BoundPrimitive(dnnl::binary(add_pd),
                        {{DNNL_ARG_SRC_0, diff_src}, {DNNL_ARG_SRC_1, affine}, {DNNL_ARG_DST, diff_src}});
  sums_.resize(2 * channels_ + 1);
}

void BatchNorm::update_running_statistics(const float* mean, const float* var, double count) {
  const double unbiased = count > 1 ? count / (count - 1) : 1.0;
  for (size_t c = 0; c < channels_; ++c) {
    running_mean_[c] = static_cast<float>(kMomentum * mean[c] + (1 - kMomentum) * running_mean_[c]);
    running_var_[c] = static_cast<float>(kMomentum * var[c] * unbiased + (1 - kMomentum) * running_var_[c]);
  }
}

void BatchNorm::sync_forward(dnnl::stream& s) {
  training_.execute(s);  // this rank's statistics (its output is overwritten below)
  s.wait();
  const auto* mean = static_cast<const float*>(mean_.get_data_handle());
  const auto* var = static_cast<const float*>(variance_.get_data_handle());
  const size_t C = channels_;
  for (size_t c = 0; c < C; ++c) {
    sums_[c] = count_ * mean[c];
    sums_[C + c] = count_ * (static_cast<double>(var[c]) + static_cast<double>(mean[c]) * mean[c]);
  }
  sums_[2 * C] = count_;
  sync_(sums_);
  global_count_ = sums_[2 * C];
  auto* gmean = static_cast<float*>(global_mean_.get_data_handle());
  auto* gvar = static_cast<float*>(global_variance_.get_data_handle());
  for (size_t c = 0; c < C; ++c) {
    const double m = sums_[c] / global_count_;
    gmean[c] = static_cast<float>(m);
    gvar[c] = static_cast<float>(std::max(0.0, sums_[C + c] / global_count_ - m * m));
  }
  global_training_.execute(s);
  s.wait();
  update_running_statistics(gmean, gvar, global_count_);
}

void BatchNorm::sync_backward(dnnl::stream& s) {
  global_backward_.execute(s);  // dx0 = weight / sigma * dy; this rank's S2 (dweight) and S1 (dbias)
  s.wait();
  const size_t C = channels_;
  std::copy_n(dbias_, C, sums_.begin());
  std::copy_n(dweight_, C, sums_.begin() + static_cast<std::ptrdiff_t>(C));
  sync_(std::span(sums_).first(2 * C));
  const auto* gmean = static_cast<const float*>(global_mean_.get_data_handle());
  const auto* gvar = static_cast<const float*>(global_variance_.get_data_handle());
  auto* scale = static_cast<float*>(scale_.get_data_handle());
  auto* shift = static_cast<float*>(shift_.get_data_handle());
  // dx - dx0 = -weight/sigma (S1 + (x - mean)/sigma S2) / n = x * scale + shift
  for (size_t c = 0; c < C; ++c) {
    const double sigma = std::sqrt(static_cast<double>(gvar[c]) + kEpsilon);
    const double k = -static_cast<double>(weight_[c]) / (sigma * global_count_);
    const double sc = k * sums_[C + c] / sigma;
    scale[c] = static_cast<float>(sc * std::sqrt(1.0 + kEpsilon));  // (the pass divides by sqrt(1 + eps))
    shift[c] = static_cast<float>(k * sums_[c] - sc * gmean[c]);
  }
  affine_.execute(s);
  add_.execute(s);
  s.wait();
}

void BatchNorm::forward(dnnl::stream& s) {
  if (sync_) return sync_forward(s);
  training_.execute(s);
  s.wait();
  update_running_statistics(static_cast<const float*>(mean_.get_data_handle()),
                            static_cast<const float*>(variance_.get_data_handle()), count_);
}

void BatchNorm::forward_inference(dnnl::stream& s) { inference_.execute(s); }

void BatchNorm::backward(dnnl::stream& s) {
  if (sync_) return sync_backward(s);
  backward_.execute(s);
}

void BatchNorm::backward_with_pauses(dnnl::stream& s, const BackwardPause& pause) {
  backward(s);
  s.wait();
  pause(grads_end_);
}

}  // namespace cifar
