#pragma once
// Plain loops, in double, for what ResNet-20 adds to the reference CNN's layers: convolution with
// stride and zero padding (no bias), batch normalisation (training and inference, PyTorch's
// running-statistics rule), the option-A subsampling shortcut and the global average pool.
// NCHW vectors throughout; written from the definitions, sharing nothing with src/.
#include <cmath>
#include <cstddef>
#include <vector>

namespace cifar::reference {

struct StridedConv {
  int B, C, H, W, O, K, S, P;
  int OH() const { return (H + 2 * P - K) / S + 1; }
  int OW() const { return (W + 2 * P - K) / S + 1; }
};

// y[b,o,i,j] = sum_{c,p,q} x[b,c,S i+p-P, S j+q-P] w[o,c,p,q]   (x = 0 outside)
inline std::vector<float> strided_conv_forward(const std::vector<float>& x, const std::vector<float>& w,
                                               const StridedConv& d) {
  std::vector<float> y(size_t(d.B) * d.O * d.OH() * d.OW());
  for (int b = 0; b < d.B; ++b)
    for (int o = 0; o < d.O; ++o)
      for (int i = 0; i < d.OH(); ++i)
        for (int j = 0; j < d.OW(); ++j) {
          double acc = 0;
          for (int c = 0; c < d.C; ++c)
            for (int p = 0; p < d.K; ++p)
              for (int q = 0; q < d.K; ++q) {
                const int h = d.S * i + p - d.P, v = d.S * j + q - d.P;
                if (h < 0 || h >= d.H || v < 0 || v >= d.W) continue;
                acc += double(x[((size_t(b) * d.C + c) * d.H + h) * d.W + v]) *
                       double(w[((size_t(o) * d.C + c) * d.K + p) * d.K + q]);
              }
          y[((size_t(b) * d.O + o) * d.OH() + i) * d.OW() + j] = float(acc);
        }
  return y;
}

struct StridedConvGrads {
  std::vector<float> dx, dw;
};

inline StridedConvGrads strided_conv_backward(const std::vector<float>& x, const std::vector<float>& w,
                                              const std::vector<float>& dy, const StridedConv& d) {
  std::vector<double> dx(x.size(), 0.0), dw(w.size(), 0.0);
  for (int b = 0; b < d.B; ++b)
    for (int o = 0; o < d.O; ++o)
      for (int i = 0; i < d.OH(); ++i)
        for (int j = 0; j < d.OW(); ++j) {
          const double g = dy[((size_t(b) * d.O + o) * d.OH() + i) * d.OW() + j];
          for (int c = 0; c < d.C; ++c)
            for (int p = 0; p < d.K; ++p)
              for (int q = 0; q < d.K; ++q) {
                const int h = d.S * i + p - d.P, v = d.S * j + q - d.P;
                if (h < 0 || h >= d.H || v < 0 || v >= d.W) continue;
                const size_t xi = ((size_t(b) * d.C + c) * d.H + h) * d.W + v;
                const size_t wi = ((size_t(o) * d.C + c) * d.K + p) * d.K + q;
                dw[wi] += g * x[xi];
                dx[xi] += g * w[wi];
              }
        }
  return {std::vector<float>(dx.begin(), dx.end()), std::vector<float>(dw.begin(), dw.end())};
}

struct BatchNormResult {
  std::vector<float> y;
  std::vector<double> mean, var;  // the batch's, var biased
};

// Training: normalise over (B, H, W) with the batch's statistics. Inference (stats given):
// with running mean and variance.
inline BatchNormResult batch_norm_forward(const std::vector<float>& x, int B, int C, int HW,
                                          const std::vector<float>& gamma, const std::vector<float>& beta,
                                          const std::vector<float>* running_mean = nullptr,
                                          const std::vector<float>* running_var = nullptr, double eps = 1e-5) {
  BatchNormResult r{std::vector<float>(x.size()), std::vector<double>(C), std::vector<double>(C)};
  for (int c = 0; c < C; ++c) {
    double mean = 0, var = 0;
    if (running_mean) {
      mean = (*running_mean)[c], var = (*running_var)[c];
    } else {
      for (int b = 0; b < B; ++b)
        for (int k = 0; k < HW; ++k) mean += x[(size_t(b) * C + c) * HW + k];
      mean /= double(B) * HW;
      for (int b = 0; b < B; ++b)
        for (int k = 0; k < HW; ++k) var += std::pow(x[(size_t(b) * C + c) * HW + k] - mean, 2);
      var /= double(B) * HW;
    }
    r.mean[c] = mean, r.var[c] = var;
    for (int b = 0; b < B; ++b)
      for (int k = 0; k < HW; ++k) {
        const size_t i = (size_t(b) * C + c) * HW + k;
        r.y[i] = float(gamma[c] * (x[i] - mean) / std::sqrt(var + eps) + beta[c]);
      }
  }
  return r;
}

struct BatchNormGrads {
  std::vector<float> dx, dgamma, dbeta;
};

// dx = gamma / sqrt(var + eps) * (dy - mean(dy) - xhat mean(dy xhat)), per channel over (B, H, W).
inline BatchNormGrads batch_norm_backward(const std::vector<float>& x, const std::vector<float>& dy, int B, int C,
                                          int HW, const std::vector<float>& gamma, double eps = 1e-5) {
  const auto fwd = batch_norm_forward(x, B, C, HW, gamma, std::vector<float>(C, 0.0f));
  BatchNormGrads g{std::vector<float>(x.size()), std::vector<float>(C), std::vector<float>(C)};
  const double n = double(B) * HW;
  for (int c = 0; c < C; ++c) {
    const double inv = 1.0 / std::sqrt(fwd.var[c] + eps);
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int b = 0; b < B; ++b)
      for (int k = 0; k < HW; ++k) {
        const size_t i = (size_t(b) * C + c) * HW + k;
        sum_dy += dy[i];
        sum_dy_xhat += dy[i] * (x[i] - fwd.mean[c]) * inv;
      }
    g.dbeta[c] = float(sum_dy);
    g.dgamma[c] = float(sum_dy_xhat);
    for (int b = 0; b < B; ++b)
      for (int k = 0; k < HW; ++k) {
        const size_t i = (size_t(b) * C + c) * HW + k;
        const double xhat = (x[i] - fwd.mean[c]) * inv;
        g.dx[i] = float(gamma[c] * inv * (dy[i] - sum_dy / n - xhat * sum_dy_xhat / n));
      }
  }
  return g;
}

// Option A: x[:, :, ::2, ::2] with `pad` zero channels before and after.
inline std::vector<float> subsample_pad(const std::vector<float>& x, int B, int C, int H, int W, int pad) {
  const int OC = C + 2 * pad, OH = (H + 1) / 2, OW = (W + 1) / 2;
  std::vector<float> y(size_t(B) * OC * OH * OW, 0.0f);
  for (int b = 0; b < B; ++b)
    for (int c = 0; c < C; ++c)
      for (int i = 0; i < OH; ++i)
        for (int j = 0; j < OW; ++j)
          y[((size_t(b) * OC + c + pad) * OH + i) * OW + j] = x[((size_t(b) * C + c) * H + 2 * i) * W + 2 * j];
  return y;
}

}  // namespace cifar::reference
