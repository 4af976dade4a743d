#include "cifar_mpi/model/layers/batch_norm.hpp"

namespace cifar {

using dnnl::memory;
using flags = dnnl::normalization_flags;

BatchNorm::BatchNorm(std::string name, const dnnl::engine& eng, memory& src, memory& diff_src, float* weight,
                     float* bias, float* dweight, float* dbias, float* running_mean, float* running_var, bool relu)
    : name_(std::move(name)), running_mean_(running_mean), running_var_(running_var) {
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
}

void BatchNorm::forward(dnnl::stream& s) {
  training_.execute(s);
  s.wait();
  const auto* mean = static_cast<const float*>(mean_.get_data_handle());
  const auto* var = static_cast<const float*>(variance_.get_data_handle());
  const double unbiased = count_ > 1 ? count_ / (count_ - 1) : 1.0;
  for (size_t c = 0; c < channels_; ++c) {
    running_mean_[c] = static_cast<float>(kMomentum * mean[c] + (1 - kMomentum) * running_mean_[c]);
    running_var_[c] = static_cast<float>(kMomentum * var[c] * unbiased + (1 - kMomentum) * running_var_[c]);
  }
}

void BatchNorm::forward_inference(dnnl::stream& s) { inference_.execute(s); }

void BatchNorm::backward(dnnl::stream& s) { backward_.execute(s); }

void BatchNorm::backward_with_pauses(dnnl::stream& s, const BackwardPause& pause) {
  backward_.execute(s);
  s.wait();
  pause(grads_end_);
}

}  // namespace cifar
