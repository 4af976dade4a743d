#include "cifar_mpi/model/layers/max_pool_kernel.hpp"

#include <cstring>

// load() returns a 32-byte vector by value; it is inlined into the loops, so the ABI warning GCC
// gives for code built without AVX does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"  // (clang reads it too)

namespace cifar {

namespace {

// Several channels of one pixel at a time in GCC/Clang vector types: the compilers did not
// vectorise the plain loops (the selects became branches, which real activations mispredict: 6.5 ms
// for pool1's backward instead of 2). Comparisons of vector types give all-ones lanes where true,
// so every select below is a bitwise blend. L floats a vector: 8 where the channel block allows it
// (one AVX2 register, or two SSE2 ones), 4, or 1 (plain layouts).
using f4 = float __attribute__((vector_size(16)));
using i4 = std::int32_t __attribute__((vector_size(16)));
using u8x4 = std::uint8_t __attribute__((vector_size(4)));
using f8 = float __attribute__((vector_size(32)));
using i8 = std::int32_t __attribute__((vector_size(32)));
using u8x8 = std::uint8_t __attribute__((vector_size(8)));
using u8x16 = std::uint8_t __attribute__((vector_size(16)));
using u8x32 = std::uint8_t __attribute__((vector_size(32)));

// The low byte of each 32-bit lane (the lanes hold 0..3): a byte shuffle, where a conversion
// (__builtin_convertvector) was compiled into one extract and store per lane.
inline u8x4 low_bytes(const i4& v) {
  const u8x16 b = (u8x16)v;
  return __builtin_shufflevector(b, b, 0, 4, 8, 12);
}
inline u8x8 low_bytes(const i8& v) {
  const u8x32 b = (u8x32)v;
  return __builtin_shufflevector(b, b, 0, 4, 8, 12, 16, 20, 24, 28);
}
// (GCC drops vector_size on a type alias that depends on a template parameter, hence the table.)
template <int L>
struct Lanes;  // L = 1 takes scalar code instead
template <>
struct Lanes<4> {
  using f = f4;
  using i = i4;
  using u8 = u8x4;
};
template <>
struct Lanes<8> {
  using f = f8;
  using i = i8;
  using u8 = u8x8;
};

// Loads and stores through memcpy (no alignment or aliasing assumed); vectors by reference, since
// passing a 32-byte vector by value has another ABI with and without AVX.
template <class V>
inline V load(const void* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class V>
inline void store(void* p, const V& v) {
  std::memcpy(p, &v, sizeof v);
}

// One window's winner for L channels: the candidates in row-major order; a later one wins only when
// strictly greater (so the first maximum stays) or NaN (so NaN propagates, as in PyTorch).
template <int L>
inline void pool_window(const float* a, const float* b, const float* c, const float* d, float* out, std::uint8_t* idx) {
  if constexpr (L == 1) {
    float m = *a;
    std::uint8_t i = 0;
    const float cand[3] = {*b, *c, *d};
    for (int q = 0; q < 3; ++q)
      if (cand[q] > m || cand[q] != cand[q]) m = cand[q], i = static_cast<std::uint8_t>(q + 1);
    *out = m, *idx = i;
  } else {
    using F = typename Lanes<L>::f;
    using I = typename Lanes<L>::i;
    F m = load<F>(a);
    I i = I{} + 0;
    const float* cand[3] = {b, c, d};
    for (int q = 0; q < 3; ++q) {
      const F v = load<F>(cand[q]);
      const I wins = (v > m) | (v != v);
      m = (F)(((I)v & wins) | ((I)m & ~wins));
      i = ((I{} + (q + 1)) & wins) | (i & ~wins);
    }
    store(out, m);
    store(idx, low_bytes(i));
  }
}

// The gradient of L channels of one window to its four pixels: dy where the pixel won, else 0.
template <int L>
inline void unpool_window(const float* dy, const std::uint8_t* idx, float* a, float* b, float* c, float* d) {
  if constexpr (L == 1) {
    float* pixel[4] = {a, b, c, d};
    for (int q = 0; q < 4; ++q) *pixel[q] = *idx == q ? *dy : 0.f;
  } else {
    using I = typename Lanes<L>::i;
    const I w = __builtin_convertvector(load<typename Lanes<L>::u8>(idx), I);
    const I g = load<I>(dy);
    float* pixel[4] = {a, b, c, d};
    for (int q = 0; q < 4; ++q) store(pixel[q], I(g & (w == q)));
  }
}

template <int L>
inline void forward_plane(const float* src, float* dst, std::uint8_t* argmax, const PoolGeometry& g) {
  const std::int64_t B = g.block, W = g.w, OH = g.oh(), OW = g.ow();
  for (std::int64_t i = 0; i < OH; ++i) {
    const float* top = src + (2 * i) * W * B;
    const float* bottom = top + W * B;
    const std::int64_t o = i * OW * B;
    for (std::int64_t j = 0; j < OW; ++j)
      for (std::int64_t k = 0; k < B; k += L) {
        const std::int64_t l = 2 * j * B + k, r = l + B, ok = o + j * B + k;
        pool_window<L>(top + l, top + r, bottom + l, bottom + r, dst + ok, argmax + ok);
      }
  }
}

template <int L>
inline void backward_plane(const float* diff_dst, const std::uint8_t* argmax, float* diff_src, const PoolGeometry& g) {
  const std::int64_t B = g.block, H = g.h, W = g.w, OH = g.oh(), OW = g.ow();
  for (std::int64_t i = 0; i < OH; ++i) {
    float* top = diff_src + (2 * i) * W * B;
    float* bottom = top + W * B;
    const std::int64_t o = i * OW * B;
    for (std::int64_t j = 0; j < OW; ++j)
      for (std::int64_t k = 0; k < B; k += L) {
        const std::int64_t l = 2 * j * B + k, r = l + B, ok = o + j * B + k;
        unpool_window<L>(diff_dst + ok, argmax + ok, top + l, top + r, bottom + l, bottom + r);
      }
    if (W % 2) {  // the unpooled last column
      std::memset(top + (W - 1) * B, 0, B * sizeof(float));
      std::memset(bottom + (W - 1) * B, 0, B * sizeof(float));
    }
  }
  if (H % 2) std::memset(diff_src + (H - 1) * W * B, 0,
                         W * B * sizeof(float));  // the unpooled last row
}

// The 8-lane forms compiled once more for AVX2 and chosen at run time (the build targets plain
// x86-64, where an 8-float vector is two SSE2 registers): one register a window on such CPUs.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2"))) void forward_plane_avx2(const float* s, float* d, std::uint8_t* a,
                                                        const PoolGeometry& g) {
  forward_plane<8>(s, d, a, g);
}
__attribute__((target("avx2"))) void backward_plane_avx2(const float* dd, const std::uint8_t* a, float* ds,
                                                         const PoolGeometry& g) {
  backward_plane<8>(dd, a, ds, g);
}
const bool kAvx2 = __builtin_cpu_supports("avx2");
#else
void forward_plane_avx2(const float* s, float* d, std::uint8_t* a, const PoolGeometry& g) {
  forward_plane<8>(s, d, a, g);
}
void backward_plane_avx2(const float* dd, const std::uint8_t* a, float* ds, const PoolGeometry& g) {
  backward_plane<8>(dd, a, ds, g);
}
const bool kAvx2 = false;
#endif

void forward_any(const float* s, float* d, std::uint8_t* a, const PoolGeometry& g, bool avx2) {
  if (g.block % 8 == 0) return avx2 ? forward_plane_avx2(s, d, a, g) : forward_plane<8>(s, d, a, g);
  if (g.block % 4 == 0) return forward_plane<4>(s, d, a, g);
  forward_plane<1>(s, d, a, g);
}
void backward_any(const float* dd, const std::uint8_t* a, float* ds, const PoolGeometry& g, bool avx2) {
  if (g.block % 8 == 0) return avx2 ? backward_plane_avx2(dd, a, ds, g) : backward_plane<8>(dd, a, ds, g);
  if (g.block % 4 == 0) return backward_plane<4>(dd, a, ds, g);
  backward_plane<1>(dd, a, ds, g);
}

}  // namespace

void max_pool2x2_forward(const float* src, float* dst, std::uint8_t* argmax, const PoolGeometry& g, PoolCode code) {
  const bool avx2 = kAvx2 && code == PoolCode::fastest;
  const std::int64_t in_plane = g.h * g.w * g.block, out_plane = g.oh() * g.ow() * g.block;
#pragma omp parallel for schedule(static)
  for (std::int64_t p = 0; p < g.planes; ++p)
    forward_any(src + p * in_plane, dst + p * out_plane, argmax + p * out_plane, g, avx2);
}

void max_pool2x2_backward(const float* diff_dst, const std::uint8_t* argmax, float* diff_src, const PoolGeometry& g,
                          PoolCode code) {
  const bool avx2 = kAvx2 && code == PoolCode::fastest;
  const std::int64_t in_plane = g.h * g.w * g.block, out_plane = g.oh() * g.ow() * g.block;
#pragma omp parallel for schedule(static)
  for (std::int64_t p = 0; p < g.planes; ++p)
    backward_any(diff_dst + p * out_plane, argmax + p * out_plane, diff_src + p * in_plane, g, avx2);
}

}  // namespace cifar
