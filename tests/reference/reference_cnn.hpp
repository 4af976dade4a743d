#pragma once
// An independent, deliberately plain C++ reference of the network (PyTorch's SimpleCNN), used by
// tests to check the oneDNN engine. It shares no code with src/: every layer is a few nested
// loops over NCHW tensors, written for clarity, not speed. Tensors are std::vector<float> with
// explicit dimensions; every sum is accumulated in double and rounded to float once at the end,
// so the reference is at least as accurate as any float32 implementation. It is itself checked
// by finite differences and against PyTorch's own numbers (tests/unit/test_reference_cnn.cpp,
// the PyTorch fixture simplecnn_steps.h5, tests/fixture_reader.hpp).
//
// Network (input [B,3,32,32], labels int32 in [0,10)):
//   conv1 3->32 k3 (stride 1, no padding) -> ReLU -> maxpool 2x2/2
//   -> conv2 32->64 k3 -> ReLU -> maxpool 2x2/2 -> flatten (C*H*W order, 64*6*6 = 2304)
//   -> fc1 2304->128 -> ReLU -> fc2 128->10 -> softmax cross-entropy, loss = batch mean.
// Shapes: conv1_out [B,32,30,30], pool1 [B,32,15,15], conv2_out [B,64,13,13],
//         pool2 [B,64,6,6] (floor mode: 13 -> 6, the last row/column is never pooled).
// Parameter layouts are PyTorch's: conv weights OIHW, linear weights [out,in], biases [out].
//
// Conventions that match PyTorch exactly:
//  * Max-pool ties: the FIRST maximum of the window in row-major order wins (scan (0,0),(0,1),
//    (1,0),(1,1); replace only on a strictly greater value), and in backward only that element
//    receives the gradient. Elements in rows/columns dropped by floor mode get zero gradient.
//  * ReLU backward: dx = dy where the input (equivalently the output) is > 0, else 0 (so the
//    gradient at exactly 0 is 0).
//  * Softmax cross-entropy: loss = mean_b (logsumexp(z_b) - z_b[label_b]);
//    dlogits = (softmax(z) - onehot(label)) / B.
//  * SGD with momentum (dampening 0, no Nesterov, no weight decay): v = mu*v + g; w -= lr*v.
//    The first step (empty buffer) sets v = g, as torch.optim.SGD does.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace cifar::reference {

// ---------------------------------------------------------------------------------------------
// Dimensions
// ---------------------------------------------------------------------------------------------

// A valid (unpadded), stride-1 convolution: x [B,C,H,W], w [O,C,K,K], b [O], y [B,O,OH,OW].
struct ConvDims {
  int B = 0, C = 0, H = 0, W = 0, O = 0, K = 0;
  int OH() const { return H - K + 1; }
  int OW() const { return W - K + 1; }
  size_t x_size() const { return size_t(B) * C * H * W; }
  size_t w_size() const { return size_t(O) * C * K * K; }
  size_t y_size() const { return size_t(B) * O * OH() * OW(); }
};

// A 2x2, stride-2 max pool in floor mode: x [B,C,H,W], y [B,C,H/2,W/2].
struct PoolDims {
  int B = 0, C = 0, H = 0, W = 0;
  int OH() const { return H / 2; }
  int OW() const { return W / 2; }
  size_t x_size() const { return size_t(B) * C * H * W; }
  size_t y_size() const { return size_t(B) * C * OH() * OW(); }
};

namespace detail {

inline void check_size(const char* what, size_t got, size_t want) {
  if (got != want)
    throw std::invalid_argument(std::string("cifar::reference: ") + what + " has " +
                                std::to_string(got) + " elements, expected " +
                                std::to_string(want));
}

inline void check_dims_positive(const char* what, std::initializer_list<int> dims) {
  for (int d : dims)
    if (d <= 0) throw std::invalid_argument(std::string("cifar::reference: ") + what +
                                            ": every dimension must be positive");
}

inline std::vector<float> to_float(const std::vector<double>& v) {
  return std::vector<float>(v.begin(), v.end());
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Convolution
// ---------------------------------------------------------------------------------------------

// y[b,o,i,j] = bias[o] + sum_{c,p,q} x[b,c,i+p,j+q] * w[o,c,p,q]
inline std::vector<float> conv2d_forward(const std::vector<float>& x, int B, int C, int H, int W,
                                         const std::vector<float>& w, const std::vector<float>& b,
                                         int O, int K) {
  const ConvDims d{B, C, H, W, O, K};
  detail::check_dims_positive("conv2d_forward", {B, C, H, W, O, K, d.OH(), d.OW()});
  detail::check_size("conv2d_forward x", x.size(), d.x_size());
  detail::check_size("conv2d_forward w", w.size(), d.w_size());
  detail::check_size("conv2d_forward b", b.size(), size_t(O));
  const int OH = d.OH(), OW = d.OW();
  std::vector<float> y(d.y_size());
  for (int n = 0; n < B; ++n)
    for (int o = 0; o < O; ++o)
      for (int i = 0; i < OH; ++i)
        for (int j = 0; j < OW; ++j) {
          double acc = b[o];
          for (int c = 0; c < C; ++c)
            for (int p = 0; p < K; ++p)
              for (int q = 0; q < K; ++q)
                acc += double(x[((size_t(n) * C + c) * H + i + p) * W + j + q]) *
                       double(w[((size_t(o) * C + c) * K + p) * K + q]);
          y[((size_t(n) * O + o) * OH + i) * OW + j] = float(acc);
        }
  return y;
}

struct ConvGrads {
  std::vector<float> dx;  // [B,C,H,W]
  std::vector<float> dw;  // [O,C,K,K]
  std::vector<float> db;  // [O]
};

// Given dy = dL/dy [B,O,OH,OW]:
//   dx[b,c,i+p,j+q] += dy[b,o,i,j] * w[o,c,p,q]
//   dw[o,c,p,q]      = sum_{b,i,j} dy[b,o,i,j] * x[b,c,i+p,j+q]
//   db[o]            = sum_{b,i,j} dy[b,o,i,j]
inline ConvGrads conv2d_backward(const std::vector<float>& x, const std::vector<float>& w,
                                 const std::vector<float>& dy, const ConvDims& d) {
  detail::check_dims_positive("conv2d_backward", {d.B, d.C, d.H, d.W, d.O, d.K, d.OH(), d.OW()});
  detail::check_size("conv2d_backward x", x.size(), d.x_size());
  detail::check_size("conv2d_backward w", w.size(), d.w_size());
  detail::check_size("conv2d_backward dy", dy.size(), d.y_size());
  const int B = d.B, C = d.C, H = d.H, W = d.W, O = d.O, K = d.K, OH = d.OH(), OW = d.OW();
  auto X = [&](int n, int c, int h, int ww) { return size_t(((size_t(n) * C + c) * H + h) * W + ww); };
  auto Wi = [&](int o, int c, int p, int q) { return size_t(((size_t(o) * C + c) * K + p) * K + q); };
  auto Y = [&](int n, int o, int i, int j) { return size_t(((size_t(n) * O + o) * OH + i) * OW + j); };

  std::vector<double> dx(d.x_size(), 0.0), dw(d.w_size(), 0.0), db(size_t(O), 0.0);
  for (int n = 0; n < B; ++n)
    for (int o = 0; o < O; ++o)
      for (int i = 0; i < OH; ++i)
        for (int j = 0; j < OW; ++j) {
          const double g = dy[Y(n, o, i, j)];
          db[o] += g;
          for (int c = 0; c < C; ++c)
            for (int p = 0; p < K; ++p)
              for (int q = 0; q < K; ++q) {
                dw[Wi(o, c, p, q)] += g * double(x[X(n, c, i + p, j + q)]);
                dx[X(n, c, i + p, j + q)] += g * double(w[Wi(o, c, p, q)]);
              }
        }
  return {detail::to_float(dx), detail::to_float(dw), detail::to_float(db)};
}

// ---------------------------------------------------------------------------------------------
// ReLU
// ---------------------------------------------------------------------------------------------

inline std::vector<float> relu_forward(const std::vector<float>& x) {
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
  return y;
}

// `x_or_y` may be the ReLU's input or its output: both are > 0 at exactly the same places.
inline std::vector<float> relu_backward(const std::vector<float>& x_or_y,
                                        const std::vector<float>& dy) {
  detail::check_size("relu_backward dy", dy.size(), x_or_y.size());
  std::vector<float> dx(dy.size());
  for (size_t i = 0; i < dy.size(); ++i) dx[i] = x_or_y[i] > 0.0f ? dy[i] : 0.0f;
  return dx;
}

// ---------------------------------------------------------------------------------------------
// Max pool 2x2, stride 2, floor mode
// ---------------------------------------------------------------------------------------------

// Returns y; if `argmax` is given, it receives for every output element the flat index into x of
// the element that won (the FIRST maximum of the window in row-major order, as PyTorch does).
inline std::vector<float> maxpool2x2_forward(const std::vector<float>& x, const PoolDims& d,
                                             std::vector<size_t>* argmax = nullptr) {
  detail::check_dims_positive("maxpool2x2_forward", {d.B, d.C, d.OH(), d.OW()});
  detail::check_size("maxpool2x2_forward x", x.size(), d.x_size());
  const int OH = d.OH(), OW = d.OW();
  std::vector<float> y(d.y_size());
  if (argmax) argmax->assign(d.y_size(), 0);
  for (int n = 0; n < d.B; ++n)
    for (int c = 0; c < d.C; ++c)
      for (int i = 0; i < OH; ++i)
        for (int j = 0; j < OW; ++j) {
          const size_t plane = (size_t(n) * d.C + c) * d.H;
          size_t best = (plane + 2 * i) * d.W + 2 * j;  // window element (0,0)
          for (int p = 0; p < 2; ++p)
            for (int q = 0; q < 2; ++q) {
              const size_t k = (plane + 2 * i + p) * d.W + 2 * j + q;
              if (x[k] > x[best]) best = k;  // strictly greater: the first maximum stays
            }
          const size_t o = ((size_t(n) * d.C + c) * OH + i) * OW + j;
          y[o] = x[best];
          if (argmax) (*argmax)[o] = best;
        }
  return y;
}

// dx[argmax[o]] += dy[o]; everything else 0. (With stride 2 the windows do not overlap, so each
// input element receives the gradient of at most one output.)
inline std::vector<float> maxpool2x2_backward(const std::vector<size_t>& argmax,
                                             const std::vector<float>& dy, const PoolDims& d) {
  detail::check_size("maxpool2x2_backward argmax", argmax.size(), d.y_size());
  detail::check_size("maxpool2x2_backward dy", dy.size(), d.y_size());
  std::vector<double> dx(d.x_size(), 0.0);
  for (size_t o = 0; o < dy.size(); ++o) {
    if (argmax[o] >= dx.size()) throw std::out_of_range("cifar::reference: argmax out of range");
    dx[argmax[o]] += dy[o];
  }
  return detail::to_float(dx);
}

// The same, recomputing the winners from the forward input x.
inline std::vector<float> maxpool2x2_backward(const std::vector<float>& x,
                                             const std::vector<float>& dy, const PoolDims& d) {
  std::vector<size_t> argmax;
  maxpool2x2_forward(x, d, &argmax);
  return maxpool2x2_backward(argmax, dy, d);
}

// ---------------------------------------------------------------------------------------------
// Linear (fully connected)
// ---------------------------------------------------------------------------------------------

// y[b,o] = bias[o] + sum_i x[b,i] * w[o,i];  x [B,In], w [Out,In], y [B,Out]
inline std::vector<float> linear_forward(const std::vector<float>& x, int B, int In,
                                         const std::vector<float>& w, const std::vector<float>& b,
                                         int Out) {
  detail::check_dims_positive("linear_forward", {B, In, Out});
  detail::check_size("linear_forward x", x.size(), size_t(B) * In);
  detail::check_size("linear_forward w", w.size(), size_t(Out) * In);
  detail::check_size("linear_forward b", b.size(), size_t(Out));
  std::vector<float> y(size_t(B) * Out);
  for (int n = 0; n < B; ++n)
    for (int o = 0; o < Out; ++o) {
      double acc = b[o];
      for (int i = 0; i < In; ++i)
        acc += double(x[size_t(n) * In + i]) * double(w[size_t(o) * In + i]);
      y[size_t(n) * Out + o] = float(acc);
    }
  return y;
}

struct LinearGrads {
  std::vector<float> dx;  // [B,In]
  std::vector<float> dw;  // [Out,In]
  std::vector<float> db;  // [Out]
};

// dx = dy * w;  dw = dy^T * x;  db = sum_b dy
inline LinearGrads linear_backward(const std::vector<float>& x, const std::vector<float>& w,
                                   const std::vector<float>& dy, int B, int In, int Out) {
  detail::check_dims_positive("linear_backward", {B, In, Out});
  detail::check_size("linear_backward x", x.size(), size_t(B) * In);
  detail::check_size("linear_backward w", w.size(), size_t(Out) * In);
  detail::check_size("linear_backward dy", dy.size(), size_t(B) * Out);
  std::vector<double> dx(size_t(B) * In, 0.0), dw(size_t(Out) * In, 0.0), db(size_t(Out), 0.0);
  for (int n = 0; n < B; ++n)
    for (int o = 0; o < Out; ++o) {
      const double g = dy[size_t(n) * Out + o];
      db[o] += g;
      for (int i = 0; i < In; ++i) {
        dx[size_t(n) * In + i] += g * double(w[size_t(o) * In + i]);
        dw[size_t(o) * In + i] += g * double(x[size_t(n) * In + i]);
      }
    }
  return {detail::to_float(dx), detail::to_float(dw), detail::to_float(db)};
}

// ---------------------------------------------------------------------------------------------
// Softmax cross-entropy (batch mean)
// ---------------------------------------------------------------------------------------------

namespace detail {
inline void check_labels(const int32_t* labels, int B, int K) {
  for (int n = 0; n < B; ++n)
    if (labels[n] < 0 || labels[n] >= K)
      throw std::out_of_range("cifar::reference: label " + std::to_string(labels[n]) +
                              " of sample " + std::to_string(n) + " is not in [0," +
                              std::to_string(K) + ")");
}
}  // namespace detail

// loss = (1/B) * sum_b (logsumexp(z[b,:]) - z[b,label_b]), computed in double (returned as
// double so finite-difference checks keep the precision; it converts to float implicitly).
inline double softmax_xent_forward(const std::vector<float>& logits, const int32_t* labels, int B,
                                   int K) {
  detail::check_dims_positive("softmax_xent_forward", {B, K});
  detail::check_size("softmax_xent_forward logits", logits.size(), size_t(B) * K);
  detail::check_labels(labels, B, K);
  double total = 0.0;
  for (int n = 0; n < B; ++n) {
    const float* z = logits.data() + size_t(n) * K;
    const double m = *std::max_element(z, z + K);
    double s = 0.0;
    for (int k = 0; k < K; ++k) s += std::exp(double(z[k]) - m);
    total += m + std::log(s) - double(z[labels[n]]);
  }
  return total / B;
}

// dlogits[b,k] = (softmax(z[b,:])[k] - [k == label_b]) / B
inline std::vector<float> softmax_xent_backward(const std::vector<float>& logits,
                                                const int32_t* labels, int B, int K) {
  detail::check_dims_positive("softmax_xent_backward", {B, K});
  detail::check_size("softmax_xent_backward logits", logits.size(), size_t(B) * K);
  detail::check_labels(labels, B, K);
  std::vector<float> d(size_t(B) * K);
  for (int n = 0; n < B; ++n) {
    const float* z = logits.data() + size_t(n) * K;
    const double m = *std::max_element(z, z + K);
    double s = 0.0;
    for (int k = 0; k < K; ++k) s += std::exp(double(z[k]) - m);
    for (int k = 0; k < K; ++k) {
      const double p = std::exp(double(z[k]) - m) / s;
      d[size_t(n) * K + k] = float((p - (k == labels[n] ? 1.0 : 0.0)) / B);
    }
  }
  return d;
}

// ---------------------------------------------------------------------------------------------
// SGD with momentum, PyTorch semantics
// ---------------------------------------------------------------------------------------------

// v = mu*v + g; w -= lr*v. An empty v is the fresh buffer of the first step: v = g.
// Done in float, in the same order of operations as torch.optim.SGD.
inline void sgd_momentum_step(std::vector<float>& w, std::vector<float>& v,
                              const std::vector<float>& g, float lr, float mu) {
  detail::check_size("sgd_momentum_step g", g.size(), w.size());
  if (v.empty()) {
    v = g;
  } else {
    detail::check_size("sgd_momentum_step v", v.size(), w.size());
    for (size_t i = 0; i < w.size(); ++i) v[i] = mu * v[i] + g[i];
  }
  for (size_t i = 0; i < w.size(); ++i) w[i] -= lr * v[i];
}

// ---------------------------------------------------------------------------------------------
// The whole model
// ---------------------------------------------------------------------------------------------

inline constexpr int kInC = 3, kInH = 32, kInW = 32;
inline constexpr int kConv1 = 32, kConv2 = 64, kKernel = 3;
inline constexpr int kC1H = 30, kP1H = 15, kC2H = 13, kP2H = 6;  // spatial sizes (square)
inline constexpr int kFlat = kConv2 * kP2H * kP2H;               // 2304
inline constexpr int kHidden = 128, kClasses = 10;

// The weights, in PyTorch layouts. Sizes: conv1_w 32*3*3*3, conv1_b 32, conv2_w 64*32*3*3,
// conv2_b 64, fc1_w 128*2304, fc1_b 128, fc2_w 10*128, fc2_b 10.
struct Params {
  std::vector<float> conv1_w, conv1_b, conv2_w, conv2_b, fc1_w, fc1_b, fc2_w, fc2_b;
};

// Parameter gradients, same names and layouts as Params.
struct Grads {
  std::vector<float> conv1_w, conv1_b, conv2_w, conv2_b, fc1_w, fc1_b, fc2_w, fc2_b;
};

// Every named activation (NCHW, or [B,features] after flatten); the same struct holds their
// gradients. Shapes for batch B: conv1_out/relu1 [B,32,30,30], pool1 [B,32,15,15],
// conv2_out/relu2 [B,64,13,13], pool2 [B,64,6,6], flat [B,2304], fc1_out/relu3 [B,128],
// logits [B,10].
struct Activations {
  std::vector<float> conv1_out, relu1, pool1, conv2_out, relu2, pool2, flat, fc1_out, relu3,
      logits;
};

// The tensors of Params or Grads with their PyTorch state_dict names ("conv1.weight", ...), in
// state_dict order, so tests can loop over them.
template <class P>  // Params or Grads, const or not
auto named_tensors(P& p) {
  using V = std::conditional_t<std::is_const_v<P>, const std::vector<float>, std::vector<float>>;
  return std::array<std::pair<const char*, V*>, 8>{{{"conv1.weight", &p.conv1_w},
                                                    {"conv1.bias", &p.conv1_b},
                                                    {"conv2.weight", &p.conv2_w},
                                                    {"conv2.bias", &p.conv2_b},
                                                    {"fc1.weight", &p.fc1_w},
                                                    {"fc1.bias", &p.fc1_b},
                                                    {"fc2.weight", &p.fc2_w},
                                                    {"fc2.bias", &p.fc2_b}}};
}

// The activations with their names ("conv1_out", ...), in forward order.
template <class A>  // Activations, const or not
auto named_activations(A& a) {
  using V = std::conditional_t<std::is_const_v<A>, const std::vector<float>, std::vector<float>>;
  return std::array<std::pair<const char*, V*>, 10>{{{"conv1_out", &a.conv1_out},
                                                     {"relu1", &a.relu1},
                                                     {"pool1", &a.pool1},
                                                     {"conv2_out", &a.conv2_out},
                                                     {"relu2", &a.relu2},
                                                     {"pool2", &a.pool2},
                                                     {"flat", &a.flat},
                                                     {"fc1_out", &a.fc1_out},
                                                     {"relu3", &a.relu3},
                                                     {"logits", &a.logits}}};
}

// One SGD-with-momentum step on every parameter; `momentum` starts as a default (empty) Params.
inline void sgd_momentum_step(Params& w, Params& momentum, const Grads& g, float lr, float mu) {
  auto ws = named_tensors(w);
  auto vs = named_tensors(momentum);
  auto gs = named_tensors(g);
  for (size_t t = 0; t < ws.size(); ++t) sgd_momentum_step(*ws[t].second, *vs[t].second, *gs[t].second, lr, mu);
}

// Forward and backward pass on a batch: x [B,3,32,32], labels [B] in [0,10). Returns the
// batch-mean loss. If given, `act` receives every activation, `dact` the gradient of the loss
// with respect to each of them, and `grads` the parameter gradients (= is written, not +=).
// Any of the three may be null.
inline float forward_backward(const Params& p, const float* x, const int32_t* labels, int B,
                              Activations* act, Activations* dact, Grads* grads) {
  detail::check_dims_positive("forward_backward", {B});
  detail::check_size("conv1_w", p.conv1_w.size(), size_t(kConv1) * kInC * kKernel * kKernel);
  detail::check_size("conv1_b", p.conv1_b.size(), size_t(kConv1));
  detail::check_size("conv2_w", p.conv2_w.size(), size_t(kConv2) * kConv1 * kKernel * kKernel);
  detail::check_size("conv2_b", p.conv2_b.size(), size_t(kConv2));
  detail::check_size("fc1_w", p.fc1_w.size(), size_t(kHidden) * kFlat);
  detail::check_size("fc1_b", p.fc1_b.size(), size_t(kHidden));
  detail::check_size("fc2_w", p.fc2_w.size(), size_t(kClasses) * kHidden);
  detail::check_size("fc2_b", p.fc2_b.size(), size_t(kClasses));

  const ConvDims c1{B, kInC, kInH, kInW, kConv1, kKernel};
  const PoolDims p1{B, kConv1, kC1H, kC1H};
  const ConvDims c2{B, kConv1, kP1H, kP1H, kConv2, kKernel};
  const PoolDims p2{B, kConv2, kC2H, kC2H};

  Activations a_local, d_local;
  Activations& a = act ? *act : a_local;
  Activations& d = dact ? *dact : d_local;

  // Forward.
  const std::vector<float> input(x, x + c1.x_size());
  std::vector<size_t> arg1, arg2;
  a.conv1_out = conv2d_forward(input, B, kInC, kInH, kInW, p.conv1_w, p.conv1_b, kConv1, kKernel);
  a.relu1 = relu_forward(a.conv1_out);
  a.pool1 = maxpool2x2_forward(a.relu1, p1, &arg1);
  a.conv2_out = conv2d_forward(a.pool1, B, kConv1, kP1H, kP1H, p.conv2_w, p.conv2_b, kConv2, kKernel);
  a.relu2 = relu_forward(a.conv2_out);
  a.pool2 = maxpool2x2_forward(a.relu2, p2, &arg2);
  a.flat = a.pool2;  // NCHW is already C*H*W order per sample: flatten is a reshape
  a.fc1_out = linear_forward(a.flat, B, kFlat, p.fc1_w, p.fc1_b, kHidden);
  a.relu3 = relu_forward(a.fc1_out);
  a.logits = linear_forward(a.relu3, B, kHidden, p.fc2_w, p.fc2_b, kClasses);
  const double loss = softmax_xent_forward(a.logits, labels, B, kClasses);

  // Backward.
  d.logits = softmax_xent_backward(a.logits, labels, B, kClasses);
  LinearGrads g_fc2 = linear_backward(a.relu3, p.fc2_w, d.logits, B, kHidden, kClasses);
  d.relu3 = std::move(g_fc2.dx);
  d.fc1_out = relu_backward(a.fc1_out, d.relu3);
  LinearGrads g_fc1 = linear_backward(a.flat, p.fc1_w, d.fc1_out, B, kFlat, kHidden);
  d.flat = std::move(g_fc1.dx);
  d.pool2 = d.flat;
  d.relu2 = maxpool2x2_backward(arg2, d.pool2, p2);
  d.conv2_out = relu_backward(a.conv2_out, d.relu2);
  ConvGrads g_c2 = conv2d_backward(a.pool1, p.conv2_w, d.conv2_out, c2);
  d.pool1 = std::move(g_c2.dx);
  d.relu1 = maxpool2x2_backward(arg1, d.pool1, p1);
  d.conv1_out = relu_backward(a.conv1_out, d.relu1);
  ConvGrads g_c1 = conv2d_backward(input, p.conv1_w, d.conv1_out, c1);  // its dx is unused

  if (grads) {
    grads->conv1_w = std::move(g_c1.dw);
    grads->conv1_b = std::move(g_c1.db);
    grads->conv2_w = std::move(g_c2.dw);
    grads->conv2_b = std::move(g_c2.db);
    grads->fc1_w = std::move(g_fc1.dw);
    grads->fc1_b = std::move(g_fc1.db);
    grads->fc2_w = std::move(g_fc2.dw);
    grads->fc2_b = std::move(g_fc2.db);
  }
  return float(loss);
}

}  // namespace cifar::reference
