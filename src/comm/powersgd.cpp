#include "cifar_mpi/comm/powersgd.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "cifar_mpi/util/clock.hpp"
#include "cifar_mpi/util/error.hpp"

namespace cifar {

size_t clamped_rank(size_t rows, size_t cols, size_t rank) { return std::min({rows, cols, rank}); }

bool worth_compressing(size_t rows, size_t cols, size_t rank, double min_compression_rate) {
  const double compressed = static_cast<double>((rows + cols) * clamped_rank(rows, cols, rank));
  return compressed * min_compression_rate < static_cast<double>(rows * cols);
}

void orthogonalize_columns(float* a, size_t rows, size_t cols) {
  const auto norm_of = [&](size_t i) {
    double n2 = 0;
    for (size_t r = 0; r < rows; ++r) n2 += static_cast<double>(a[r * cols + i]) * a[r * cols + i];
    return std::sqrt(n2);
  };
  // Removes column i (unit) from column j.
  const auto remove = [&](size_t i, size_t j) {
    double dot = 0;
    for (size_t r = 0; r < rows; ++r) dot += static_cast<double>(a[r * cols + i]) * a[r * cols + j];
    const float d = static_cast<float>(dot);
    for (size_t r = 0; r < rows; ++r) a[r * cols + j] -= d * a[r * cols + i];
  };
  std::vector<double> initial(cols);
  for (size_t i = 0; i < cols; ++i) initial[i] = norm_of(i);
  for (size_t i = 0; i < cols; ++i) {
    double norm = norm_of(i);
    // A column the earlier ones nearly cancelled (a matrix of lower rank than asked, as at
    // R = min(rows, cols)) is left with rounding noise, which one pass does not make orthogonal:
    // a second pass does ("twice is enough"). Well-conditioned columns take one pass, as the hook.
    if (norm > 0 && norm < 0.5 * initial[i]) {
      for (size_t k = 0; k < i; ++k) remove(k, i);
      norm = norm_of(i);
    }
    const float n = static_cast<float>(norm);
    for (size_t r = 0; r < rows; ++r) a[r * cols + i] = n > 0 ? a[r * cols + i] / n : 0.0f;
    for (size_t j = i + 1; j < cols; ++j) remove(i, j);
  }
}

namespace {

// Standard normal values from a seeded 64-bit generator by Box-Muller: the same on every rank and
// every standard library (std::normal_distribution's algorithm is the library's).
void fill_normal(std::span<float> out, uint64_t seed) {
  std::mt19937_64 gen(seed);
  const auto uniform = [&] { return (static_cast<double>(gen() >> 11) + 0.5) * 0x1.0p-53; };  // (0, 1)
  for (size_t i = 0; i < out.size(); i += 2) {
    const double r = std::sqrt(-2.0 * std::log(uniform())), t = 2.0 * M_PI * uniform();
    out[i] = static_cast<float>(r * std::cos(t));
    if (i + 1 < out.size()) out[i + 1] = static_cast<float>(r * std::sin(t));
  }
}

// The three products, with the rank K a compile-time constant for the usual ranks so that the
// inner loops over K unroll into registers (K runtime-sized otherwise: kDynamic).
constexpr size_t kDynamic = 0;

// p (rows x k) = m (rows x cols) q (cols x k)
template <size_t K>
void multiply_k(const float* m, const float* q, float* p, size_t rows, size_t cols, size_t k) {
  if constexpr (K != kDynamic) k = K;
  for (size_t i = 0; i < rows; ++i) {
    float acc[K == kDynamic ? 1 : K] = {};
    float* out = K == kDynamic ? p + i * k : acc;
    if constexpr (K == kDynamic) std::fill(out, out + k, 0.0f);
    const float* row = m + i * cols;
    for (size_t c = 0; c < cols; ++c) {
      const float v = row[c];
      for (size_t j = 0; j < k; ++j) out[j] += v * q[c * k + j];
    }
    if constexpr (K != kDynamic) std::copy(acc, acc + K, p + i * k);
  }
}

// q (cols x k) = m^T (cols x rows) p (rows x k)
template <size_t K>
void multiply_transposed_k(const float* m, const float* p, float* q, size_t rows, size_t cols, size_t k) {
  if constexpr (K != kDynamic) k = K;
  std::fill(q, q + cols * k, 0.0f);
  for (size_t i = 0; i < rows; ++i) {
    float pi[K == kDynamic ? 1 : K];
    const float* prow = p + i * k;
    if constexpr (K != kDynamic) {
      std::copy(prow, prow + K, pi);
      prow = pi;
    }
    const float* row = m + i * cols;
    for (size_t c = 0; c < cols; ++c) {
      const float v = row[c];
      for (size_t j = 0; j < k; ++j) q[c * k + j] += v * prow[j];
    }
  }
}

// m (rows x cols) = p (rows x k) q^T (k x cols)
template <size_t K>
void outer_k(const float* p, const float* q, float* m, size_t rows, size_t cols, size_t k) {
  if constexpr (K != kDynamic) k = K;
  for (size_t i = 0; i < rows; ++i)
    for (size_t c = 0; c < cols; ++c) {
      float s = 0;
      for (size_t j = 0; j < k; ++j) s += p[i * k + j] * q[c * k + j];
      m[i * cols + c] = s;
    }
}

template <template <size_t> class F>
void dispatch(size_t k, auto&&... args) {
  switch (k) {
    case 1: F<1>{}(args..., k); break;
    case 2: F<2>{}(args..., k); break;
    case 4: F<4>{}(args..., k); break;
    case 8: F<8>{}(args..., k); break;
    default: F<kDynamic>{}(args..., k); break;
  }
}

template <size_t K>
struct Multiply {
  void operator()(const float* m, const float* q, float* p, size_t rows, size_t cols, size_t k) {
    multiply_k<K>(m, q, p, rows, cols, k);
  }
};
template <size_t K>
struct MultiplyTransposed {
  void operator()(const float* m, const float* p, float* q, size_t rows, size_t cols, size_t k) {
    multiply_transposed_k<K>(m, p, q, rows, cols, k);
  }
};
template <size_t K>
struct Outer {
  void operator()(const float* p, const float* q, float* m, size_t rows, size_t cols, size_t k) {
    outer_k<K>(p, q, m, rows, cols, k);
  }
};

void multiply(const float* m, const float* q, float* p, size_t rows, size_t cols, size_t k) {
  dispatch<Multiply>(k, m, q, p, rows, cols);
}
void multiply_transposed(const float* m, const float* p, float* q, size_t rows, size_t cols, size_t k) {
  dispatch<MultiplyTransposed>(k, m, p, q, rows, cols);
}
void outer(const float* p, const float* q, float* m, size_t rows, size_t cols, size_t k) {
  dispatch<Outer>(k, p, q, m, rows, cols);
}

}  // namespace

PowerSgd::PowerSgd(const std::vector<TensorSpec>& specs, PowerSgdOptions options) : options_(options) {
  if (options_.rank == 0) throw Error("--compress-rank must be at least 1");
  // In arena order (backward order), so the uncompressed values and the factors lie as the
  // gradients do.
  std::vector<const TensorSpec*> ordered;
  for (const auto& s : specs) ordered.push_back(&s);
  std::sort(ordered.begin(), ordered.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  size_t p = 0, q = 0, e = 0;
  for (const TensorSpec* s : ordered) {
    const size_t rows = s->shape.empty() ? 1 : s->shape[0];
    const size_t cols = rows == 0 ? 0 : s->count / rows;
    if (s->shape.size() >= 2 && worth_compressing(rows, cols, options_.rank, options_.min_compression_rate)) {
      const size_t k = clamped_rank(rows, cols, options_.rank);
      matrices_.push_back({s->name, s->offset, rows, cols, k, p, q, e});
      p += rows * k, q += cols * k, e += rows * cols;
    } else {
      uncompressed_.emplace_back(s->offset, s->count);
      uncompressed_floats_ += s->count;
    }
  }
  p_.resize(p), q_.resize(q), error_.resize(e);
  send_.resize(uncompressed_floats_ + p);
  fill_normal(q_, options_.seed);
}

void PowerSgd::reduce(std::span<float> grads, Allreduce& algo, int world, StepCommStats& stats) {
  stats = StepCommStats{};
  const float inv_n = 1.0f / static_cast<float>(world);
  if (scratch_.empty()) scratch_.resize(std::max<size_t>(1, algo.scratch_floats(std::max(send_.size(), q_.size()))));
  // M += E; E keeps M (the part the approximation misses is subtracted at the end). Q orthogonal.
  for (const auto& m : matrices_) {
    float* g = grads.data() + m.offset;
    float* e = error_.data() + m.e_offset;
    for (size_t i = 0; i < m.rows * m.cols; ++i) e[i] = g[i] += e[i];
    orthogonalize_columns(q_.data() + m.q_offset, m.cols, m.rank);
    multiply(g, q_.data() + m.q_offset, p_.data() + m.p_offset, m.rows, m.cols, m.rank);
  }
  // First all-reduce: the uncompressed tensors, then every P.
  size_t at = 0;
  for (const auto& [offset, count] : uncompressed_) {
    std::copy_n(grads.data() + offset, count, send_.data() + at);
    at += count;
  }
  std::copy(p_.begin(), p_.end(), send_.begin() + static_cast<std::ptrdiff_t>(at));
  stats.first_start = now_seconds();
  algo.start(send_.data(), send_.size(), scratch_.data());
  algo.wait();
  at = 0;
  for (const auto& [offset, count] : uncompressed_) {
    for (size_t i = 0; i < count; ++i) grads[offset + i] = send_[at + i] * inv_n;
    at += count;
  }
  std::copy(send_.begin() + static_cast<std::ptrdiff_t>(at), send_.end(), p_.begin());
  // P orthogonal (the sum needs no 1/N), Q = M^T P, second all-reduce.
  for (const auto& m : matrices_) {
    orthogonalize_columns(p_.data() + m.p_offset, m.rows, m.rank);
    multiply_transposed(grads.data() + m.offset, p_.data() + m.p_offset, q_.data() + m.q_offset, m.rows, m.cols,
                        m.rank);
  }
  algo.start(q_.data(), q_.size(), scratch_.data());
  algo.wait();
  stats.last_end = now_seconds();
  for (float& v : q_) v *= inv_n;
  // M ~ P Q^T; E = (M + E) - P Q^T.
  for (const auto& m : matrices_) {
    float* g = grads.data() + m.offset;
    float* e = error_.data() + m.e_offset;
    outer(p_.data() + m.p_offset, q_.data() + m.q_offset, g, m.rows, m.cols, m.rank);
    for (size_t i = 0; i < m.rows * m.cols; ++i) e[i] -= g[i];
  }
  stats.calls = 2;
}

}  // namespace cifar
