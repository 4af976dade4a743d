#include "cifar_mpi/model/conv_probe.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>

#include "cifar_mpi/model/layers/conv2d.hpp"
#include "cifar_mpi/model/model_catalog.hpp"
#include "cifar_mpi/util/clock.hpp"

namespace cifar {

using dnnl::memory;

namespace {

constexpr ConvAlgo kAlgos[] = {ConvAlgo::direct, ConvAlgo::winograd};

bool is_reference(const std::string& impl) { return impl.rfind("ref:", 0) == 0; }

void zero_fill(memory& m) { std::memset(m.get_data_handle(), 0, m.get_desc().get_size()); }

// A convolution of one shape with its own src, diff_src and parameters, all zero (no NaN or
// denormal garbage to slow a kernel), the src in the layout the forward primitive reads.
struct ProbeLayer {
  std::vector<float> params;  // weight, bias, dweight, dbias
  memory src, diff_src;
  std::unique_ptr<Conv2d> conv;

  // Empty when oneDNN has no implementation (ConvUnsupported).
  static std::unique_ptr<ProbeLayer> make(const dnnl::engine& eng, const ConvShape& c, size_t batch,
                                          ConvPassAlgos algos, ComputeDtype dtype) {
    auto p = std::make_unique<ProbeLayer>();
    const memory::dim B = static_cast<memory::dim>(batch);
    const size_t nw = size_t(c.out_channels) * c.in_channels * c.kernel * c.kernel, nb = c.bias ? c.out_channels : 0;
    p->params.assign(2 * (nw + nb), 0.0f);
    float* w = p->params.data();
    const memory::data_type dt = dtype == ComputeDtype::bf16 ? memory::data_type::bf16 : memory::data_type::f32;
    const memory::desc plain({B, c.in_channels, c.side, c.side}, dt, memory::format_tag::nchw);
    try {
      auto build = [&](const memory::desc& src_desc) {
        p->src = memory(src_desc, eng);
        p->diff_src = memory(src_desc, eng);
        zero_fill(p->src);
        zero_fill(p->diff_src);
        p->conv = std::make_unique<Conv2d>(c.name, eng, p->src, c.first ? nullptr : &p->diff_src, c.out_channels,
                                           ConvGeometry{c.kernel, c.stride, c.pad}, w, c.bias ? w + nw : nullptr,
                                           w + nw + nb, c.bias ? w + 2 * nw + nb : nullptr, algos, dtype);
      };
      build(plain);
      const memory::desc wanted = p->conv->wanted_src_desc();
      if (!(wanted == plain)) build(wanted);
      zero_fill(p->conv->diff_dst());
    } catch (const ConvUnsupported&) {
      return nullptr;
    }
    return p;
  }
};

// Minimum over `reps` timed runs after `warmup` untimed ones, in ms.
template <class F>
double time_ms(dnnl::stream& s, int warmup, int reps, F&& run) {
  for (int i = 0; i < warmup; ++i) run();
  s.wait();
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    const double t0 = now_seconds();
    run();
    s.wait();
    best = std::min(best, 1e3 * (now_seconds() - t0));
  }
  return best;
}

}  // namespace

std::string ConvProbe::summary() const {
  std::string line = layer + ":";
  char buf[160];
  auto ms = [](double t) {
    char b[24];
    if (t < 0) return std::string("n/a");
    std::snprintf(b, sizeof b, "%.2f", t);
    return std::string(b);
  };
  for (const auto& r : rows) {
    std::snprintf(buf, sizeof buf, " [forward %s %s ms; backward-data direct %s winograd %s; backward-weights direct %s winograd %s]",
                  conv_algo_name(r.forward), ms(r.forward_ms).c_str(), ms(r.backward_data_ms[0]).c_str(),
                  ms(r.backward_data_ms[1]).c_str(), ms(r.backward_weights_ms[0]).c_str(),
                  ms(r.backward_weights_ms[1]).c_str());
    line += buf;
  }
  std::snprintf(buf, sizeof buf, " -> forward %s, backward-data %s, backward-weights %s: %.2f ms (all direct %.2f ms)",
                conv_algo_name(chosen.forward), conv_algo_name(chosen.backward_data),
                conv_algo_name(chosen.backward_weights), chosen_ms, direct_ms);
  return line + buf;
}

std::vector<ConvProbe> probe_conv_algorithms(const dnnl::engine& eng, std::span<const ConvShape> convs,
                                             size_t batch, ComputeDtype dtype, int warmup, int reps) {
  dnnl::stream s(eng);
  std::vector<ConvProbe> out;
  for (const auto& shape : convs) {
    ConvProbe probe;
    probe.layer = shape.name;
    double best_total = -1;
    for (ConvAlgo f : kAlgos) {
      ConvProbeRow row;
      row.forward = f;
      // Each backward algorithm in a layer of its own (one pass unsupported must not hide the
      // other); the forward is timed in the first layer that exists.
      for (ConvAlgo a : kAlgos) {
        const int ai = static_cast<int>(a);
        for (int pass : {1, 2}) {  // 1: backward data, 2: backward weights
          if (pass == 1 && shape.first) {
            row.backward_data_ms[ai] = 0;
            continue;
          }
          ConvPassAlgos algos{f, pass == 1 ? a : ConvAlgo::direct, pass == 2 ? a : ConvAlgo::direct};
          auto layer = ProbeLayer::make(eng, shape, batch, algos, dtype);
          if (!layer) continue;
          Conv2d& c = *layer->conv;
          if (is_reference(c.impl_names()[0])) break;  // no real forward of this algorithm
          if (row.forward_ms < 0) row.forward_ms = time_ms(s, warmup, reps, [&] { c.forward(s); });
          if (pass == 1 && !is_reference(c.impl_names()[1]))
            row.backward_data_ms[ai] = time_ms(s, warmup, reps, [&] { c.backward_data(s); });
          if (pass == 2 && !is_reference(c.impl_names()[2]))
            row.backward_weights_ms[ai] = time_ms(s, warmup, reps, [&] { c.backward_weights(s); });
        }
      }
      if (row.forward_ms < 0) continue;
      probe.rows.push_back(row);
      // The fastest backward algorithm of each pass under this forward (direct on a near-tie).
      auto pick = [](const double (&t)[2], ConvAlgo& choice) -> double {
        if (t[0] < 0 && t[1] < 0) return -1;
        const bool wino = t[1] >= 0 && (t[0] < 0 || t[1] < 0.98 * t[0]);
        choice = wino ? ConvAlgo::winograd : ConvAlgo::direct;
        return wino ? t[1] : t[0];
      };
      ConvPassAlgos algos{f, ConvAlgo::direct, ConvAlgo::direct};
      const double bd = pick(row.backward_data_ms, algos.backward_data);
      const double bw = pick(row.backward_weights_ms, algos.backward_weights);
      if (bd < 0 || bw < 0) continue;
      const double total = row.forward_ms + bd + bw;
      if (f == ConvAlgo::direct && row.backward_data_ms[0] >= 0 && row.backward_weights_ms[0] >= 0)
        probe.direct_ms = row.forward_ms + row.backward_data_ms[0] + row.backward_weights_ms[0];
      if (best_total < 0 || total < 0.98 * best_total) {
        best_total = total;
        probe.chosen = algos;
        probe.chosen_ms = total;
      }
    }
    out.push_back(std::move(probe));
  }
  return out;
}

NetworkOptions uniform_conv_options(ConvAlgo algo, ComputeDtype dtype, std::span<const ConvShape> convs) {
  NetworkOptions o;
  o.dtype = dtype;
  for (const auto& c : convs) o.conv[c.name] = {algo, algo, algo};
  return o;
}

}  // namespace cifar
