#pragma once
// Shared set-up for tests of the oneDNN engine: an engine and stream, an arena with the reference
// network's tensors, and conversions between the arena / oneDNN memories and the plain
// reference's PyTorch-layout vectors.
#include <dnnl.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "cifar_mpi/model/param_arena.hpp"
#include "simple_cnn_model.hpp"
#include "reference/reference_cnn.hpp"

namespace cifar::testing {

struct Engine {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{eng};
};

inline ParamArena make_arena(uint64_t seed) {
  ParamArena a;
  register_simple_cnn(a);
  init_pytorch_default(a, seed);
  return a;
}

// A memory of any layout as a plain NCHW (4-D) or row-major (2-D) vector.
inline std::vector<float> to_plain(const dnnl::memory& m, Engine& e) {
  const auto dims = m.get_desc().dims();
  const auto tag = dims.size() == 4 ? dnnl::memory::format_tag::nchw : dnnl::memory::format_tag::nc;
  dnnl::memory plain({dims, dnnl::memory::data_type::f32, tag}, e.eng);
  dnnl::reorder(m, plain).execute(e.stream, const_cast<dnnl::memory&>(m), plain);
  e.stream.wait();
  const auto* p = static_cast<const float*>(plain.get_data_handle());
  return {p, p + plain.get_desc().get_size() / sizeof(float)};
}

// A plain NCHW vector into a memory of any layout.
inline void from_plain(const std::vector<float>& v, dnnl::memory& m, Engine& e) {
  dnnl::memory plain({m.get_desc().dims(), dnnl::memory::data_type::f32, dnnl::memory::format_tag::nchw}, e.eng);
  std::copy(v.begin(), v.end(), static_cast<float*>(plain.get_data_handle()));
  dnnl::reorder(plain, m).execute(e.stream, plain, m);
  e.stream.wait();
}

// n values drawn uniformly from [lo, hi), the same for a seed.
inline std::vector<float> random_vector(size_t n, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 gen(static_cast<uint32_t>(seed));
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = u(gen);
  return v;
}

// Every element of `got` within `tol` of the plain loops' `want`; names the worst one if not.
inline void expect_max_abs_error(std::span<const float> got, std::span<const float> want, double tol,
                                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (const double d = std::fabs(double(got[i]) - want[i]); d > worst) worst = d, at = i;
  EXPECT_LE(worst, tol) << what << ": element " << at << " is " << got[at] << ", the loop gives " << want[at];
}

inline std::vector<float> tensor(const ParamArena& a, const std::string& name, bool grad) {
  const auto& s = a.spec(name);
  const float* base = (grad ? a.grads() : a.params()).data() + s.offset;
  return {base, base + s.count};
}

inline reference::Params to_reference(const ParamArena& a) {
  reference::Params p;
  for (auto& [name, v] : reference::named_tensors(p)) *v = tensor(a, name, false);
  return p;
}

inline std::vector<float> random_input(size_t batch, uint64_t seed) {
  std::mt19937 gen(static_cast<uint32_t>(seed));
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> x(batch * 3 * 32 * 32);
  for (auto& v : x) v = u(gen);
  return x;
}

inline std::vector<int32_t> random_labels(size_t batch, uint64_t seed) {
  std::mt19937 gen(static_cast<uint32_t>(seed));
  std::vector<int32_t> y(batch);
  for (auto& v : y) v = static_cast<int32_t>(gen() % 10);
  return y;
}

}  // namespace cifar::testing
