#pragma once
// Shared set-up for tests of the oneDNN engine: an engine and stream, an arena with the reference
// network's tensors, and conversions between the arena / oneDNN memories and the plain
// reference's PyTorch-layout vectors.
#include <dnnl.hpp>

#include <random>
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
