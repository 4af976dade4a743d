// Speed of one training step (forward, backward, SGD update) of the reference network on one
// process, beside the same machine's oneDNN sgemm for scale, and a per-layer time breakdown.
//   train_step_bench [--batch 128] [--threads 2] [--steps 50] [--warmup 5] [--per-layer]
//                    [--conv-algo direct|auto|winograd] [--compute-dtype fp32|bf16] [--ab-fuse R]
//                    [--fuse-relu on|off]
// Prints images/s, achieved GFLOP/s (model FLOPs counted analytically) and sgemm GFLOP/s; with
// auto, the start-up probe's line per convolution (its timings and the algorithms chosen).
// --per-layer: every op of a step timed inside real steps (median over --steps). The convolutions
// and inner products: time, GFLOP/s, oneDNN's implementation, ratio to sgemm. Everything else
// (pooling, ReLU, reorders, loss, gradient averaging, SGD update): time, bytes it must move,
// GB/s, and the fraction of two bounds measured in the same run at the same thread count: a
// STREAM copy over 64 MB arrays (memory) and a copy moving the op's own byte count (the cache
// level its data lives in).
// --ab-fuse R: R rounds alternating a network with ReLU fused as a post-op and one with separate
// ReLU passes (--steps steps each), the step-time ratio of every round and their median.
#include <CLI/CLI.hpp>
#include <dnnl.hpp>
#include <mpi.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <ctime>
#include <cstdio>
#include <map>
#include <random>
#include <vector>

#include "bench_cli.hpp"
#include "cifar_mpi/model/conv_probe.hpp"
#include "cifar_mpi/model/layers/conv2d.hpp"
#include "cifar_mpi/model/layers/max_pool.hpp"
#include "cifar_mpi/model/layers/relu.hpp"
#include "cifar_mpi/model/model_catalog.hpp"
#include "cifar_mpi/model/network.hpp"
#include "cifar_mpi/optim/sgd_momentum.hpp"
#include "cifar_mpi/util/clock.hpp"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
// CPU time of the whole process: on a shared, loaded machine it moves far less than wall time
// (run with OMP_WAIT_POLICY=passive so that idle OpenMP threads do not spin it up).
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Wall time, and process CPU time / threads: on a loaded, shared machine the second leaves out
// the time other processes held our cores (OMP_WAIT_POLICY=passive keeps idle threads off it).
struct Stopwatch {
  Clock::time_point t0 = Clock::now();
  double c0 = process_cpu_seconds();
  double wall() const { return seconds_since(t0); }
  double cpu_per_thread() const { return (process_cpu_seconds() - c0) / omp_get_max_threads(); }
};

struct Rate {
  double wall, cpu;  // per wall second / per CPU second per thread
};

Rate sgemm_gflops(int threads) {
  const int n = 1024;
  std::vector<float> a(size_t(n) * n, 1.0f), b(size_t(n) * n, 0.5f), c(size_t(n) * n);
  omp_set_num_threads(threads);
  dnnl_sgemm('N', 'N', n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);  // warm-up
  const int reps = 20;
  const Stopwatch w;
  for (int r = 0; r < reps; ++r) dnnl_sgemm('N', 'N', n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
  const double flop = 2.0 * n * n * n * reps;
  return {flop / w.wall() / 1e9, flop / w.cpu_per_thread() / 1e9};
}

// STREAM-like bandwidth at the current OpenMP thread count, best of `reps` (as STREAM reports),
// by CPU time per thread: copy moves 2 x 4 bytes per element, triad (a = b + 3c) 3 x 4.
struct Bandwidth {
  double copy_gbs, triad_gbs;
};
Bandwidth stream_bandwidth(size_t floats, int reps) {
  std::vector<float> a(floats, 1.0f), b(floats, 2.0f), c(floats, 0.0f);
  double copy = 1e30, triad = 1e30;
  for (int r = 0; r < reps; ++r) {
    const Stopwatch w1;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < floats; ++i) c[i] = a[i];
    copy = std::min(copy, w1.cpu_per_thread());
    const Stopwatch w2;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < floats; ++i) a[i] = b[i] + 3.0f * c[i];
    triad = std::min(triad, w2.cpu_per_thread());
  }
  return {8.0 * floats / copy / 1e9, 12.0 * floats / triad / 1e9};
}

// Each op of a step, timed inside real steps: per op, one time per step (ms), in step order.
struct OpTimes {
  std::vector<std::string> order;
  std::map<std::string, std::vector<double>> ms, cpu_ms;  // wall; CPU per thread
  std::map<std::string, double> bytes, flops;
  std::map<std::string, std::string> note;
  // Who runs each op: the layer, and in which direction (for the per-layer summary lines).
  std::string layer;
  bool backward = false;
  std::map<std::string, std::pair<std::string, bool>> owner;
  // serial: the op runs on one thread (our own loops), so its CPU time is not divided by T.
  template <class F>
  void time(const std::string& name, dnnl::stream& s, F&& f, bool serial = false) {
    const Stopwatch w;
    f();
    s.wait();
    if (!ms.count(name)) order.push_back(name), owner[name] = {layer, backward};
    ms[name].push_back(1e3 * w.wall());
    cpu_ms[name].push_back(1e3 * w.cpu_per_thread() * (serial ? omp_get_max_threads() : 1));
  }
  double median(const std::string& name, bool cpu = true) const {
    auto v = (cpu ? cpu_ms : ms).at(name);
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  }
};

double mem_bytes(const dnnl::memory& m) { return static_cast<double>(m.get_desc().get_size()); }

// Multiply-adds x 2 of one pass of a convolution or inner product (all three passes do the same).
double pass_flops(const cifar::WeightedLayer& w) {
  const auto src = const_cast<cifar::WeightedLayer&>(w).wanted_src_desc().dims();
  const auto dst = const_cast<cifar::WeightedLayer&>(w).dst().get_desc().dims();
  double dst_elems = 1, per_output = 1;
  for (auto d : dst) dst_elems *= static_cast<double>(d);
  if (const auto* conv = dynamic_cast<const cifar::Conv2d*>(&w)) {  // C x K x K per output
    const double k = conv->geometry().kernel;
    per_output = static_cast<double>(src[1]) * k * k;
  } else {  // inner product: every input feature
    for (size_t d = 1; d < src.size(); ++d) per_output *= static_cast<double>(src[d]);
  }
  return 2.0 * dst_elems * per_output;
}

// Every convolution and inner product of the model in forward order, inside blocks too.
void weighted_layers(const cifar::Layer& l, std::vector<const cifar::WeightedLayer*>& out) {
  if (const auto* w = dynamic_cast<const cifar::WeightedLayer*>(&l)) out.push_back(w);
  for (const cifar::Layer* p : l.parts()) weighted_layers(*p, out);
}

// Multiply-adds x 2 of one training step per image, from the built network: every convolution
// and inner product does three passes of pass_flops (forward, backward data, backward weights)
// but the first, which has no data gradient.
double train_flops_per_image(cifar::Network& net, size_t batch) {
  std::vector<const cifar::WeightedLayer*> all;
  for (const auto& l : net.layers()) weighted_layers(*l, all);
  double flops = 0;
  for (size_t i = 0; i < all.size(); ++i) flops += (i == 0 ? 2 : 3) * pass_flops(*all[i]);
  return flops / static_cast<double>(batch);
}

void time_forward(cifar::Network& net, size_t k, dnnl::stream& s, OpTimes& t) {
  auto& l = *net.layers()[k];
  const std::string n = l.name();
  t.layer = n, t.backward = false;
  if (auto* w = dynamic_cast<cifar::WeightedLayer*>(&l)) {
    for (const auto& r : w->active_reorders()) {
      if (std::string(r.role) != "src" && std::string(r.role) != "weight fwd") continue;
      const std::string name = n + " reorder " + r.role;
      t.time(name, s, [&] { r.bridge->execute(s); });
      t.bytes[name] = static_cast<double>(r.bridge->bytes());
    }
    t.time(n + " fwd", s, [&] { w->forward_primitive(s); });
    t.flops[n + " fwd"] = pass_flops(*w);
    t.note[n + " fwd"] = w->primitive_impls()[0];
    return;
  }
  t.time(n + " fwd", s, [&] { l.forward(s); });
  if (const auto* relu = dynamic_cast<const cifar::Relu*>(&l)) {
    t.bytes[n + " fwd"] = relu->applied_upstream() ? 0 : 2 * mem_bytes(l.dst());  // in place: read + write
    if (relu->applied_upstream()) t.note[n + " fwd"] = "post-op of the layer before: no pass";
  } else if (const auto* pool = dynamic_cast<const cifar::MaxPool*>(&l)) {
    t.bytes[n + " fwd"] = mem_bytes(net.layers()[k - 1]->dst()) + mem_bytes(l.dst()) + pool->workspace_bytes();
    t.note[n + " fwd"] = pool->implementation();
  }
}

void time_backward(cifar::Network& net, size_t k, dnnl::stream& s, OpTimes& t) {
  auto& l = *net.layers()[k];
  const std::string n = l.name();
  t.layer = n, t.backward = true;
  if (auto* w = dynamic_cast<cifar::WeightedLayer*>(&l)) {
    std::map<std::string, cifar::LayoutBridge*> bridges;
    for (const auto& r : w->active_reorders()) bridges[r.role] = r.bridge;
    auto reorder = [&](const char* role) {
      if (!bridges.count(role)) return;
      const std::string name = n + " reorder " + role;
      t.time(name, s, [&] { bridges[role]->execute(s); });
      t.bytes[name] = static_cast<double>(bridges[role]->bytes());
    };
    const auto impls = w->primitive_impls();
    reorder("diff_dst");
    t.time(n + " bwd-weights", s, [&] { w->backward_weights_primitive(s); });
    t.flops[n + " bwd-weights"] = pass_flops(*w);
    t.note[n + " bwd-weights"] = impls[2];
    reorder("dweight");
    if (impls[1].empty()) return;  // the first layer: no data gradient
    reorder("weight bwd");
    t.time(n + " bwd-data", s, [&] { w->backward_data_primitive(s); });
    t.flops[n + " bwd-data"] = pass_flops(*w);
    t.note[n + " bwd-data"] = impls[1];
    reorder("diff_src");
    return;
  }
  t.time(n + " bwd", s, [&] { l.backward(s); });
  if (dynamic_cast<const cifar::Relu*>(&l)) {
    t.bytes[n + " bwd"] = 3 * mem_bytes(l.dst());  // reads dst and diff_dst, writes diff_src (in place)
  } else if (const auto* pool = dynamic_cast<const cifar::MaxPool*>(&l)) {
    t.bytes[n + " bwd"] = mem_bytes(l.diff_dst()) + pool->workspace_bytes() + mem_bytes(net.layers()[k - 1]->diff_dst());
    t.note[n + " bwd"] = pool->implementation();
  }
}

// One training step, every op timed apart (each followed by a stream wait, as a step's layers are).
void instrumented_step(cifar::Network& net, cifar::ParamArena& arena, cifar::SgdMomentum& sgd, const int32_t* labels,
                       dnnl::stream& s, OpTimes& t) {
  const size_t n_layers = net.layers().size(), batch = net.batch(), classes = cifar::Network::kClasses;
  for (size_t k = 0; k < n_layers; ++k) time_forward(net, k, s, t);
  t.layer.clear();
  auto& out = *net.layers().back();
  t.time("loss (softmax-xent)", s, [&] {
    cifar::softmax_cross_entropy(static_cast<float*>(out.dst().get_data_handle()), labels, batch, classes,
                                 static_cast<float*>(out.diff_dst().get_data_handle()), batch);
  }, true);
  t.bytes["loss (softmax-xent)"] = 2.0 * 4 * batch * classes + 4.0 * batch;
  for (size_t k = n_layers; k-- > 0;) time_backward(net, k, s, t);
  t.layer.clear();
  // The reducer's 1/N scaling after the sum (src/comm/gradient_reducer.cpp), over the whole
  // arena; at N = 1 the program skips it, here it multiplies by 1 to time it.
  static volatile float one = 1.0f;  // volatile: the compiler may not drop a multiply by 1
  const float inv_n = one;
  float* g = arena.grads().data();
  const size_t n = arena.total_count();
  t.time("grad averaging (x 1/N)", s, [&] {
    for (size_t i = 0; i < n; ++i) g[i] *= inv_n;
  }, true);
  t.bytes["grad averaging (x 1/N)"] = 2.0 * 4 * n;
  t.time("SGD update", s, [&] { sgd.step(arena.params(), arena.grads()); }, true);
  t.bytes["SGD update"] = 5.0 * 4 * n;  // w and v read and written, g read
}

// Rates are by CPU time per thread (load-robust); the wall-time median is printed beside.
void print_op_tables(const OpTimes& t, Rate sgemm, double step_ms, const Bandwidth& dram) {
  std::map<double, double> copy_at;  // op bytes -> same-size copy bound (GB/s)
  std::printf("\nconvolutions and inner products (median of steps; the pass alone, reorders apart; rates by CPU\n"
              "time per thread, sgemm %.1f GFLOP/s so measured):\n", sgemm.cpu);
  std::printf("  %-18s %8s %8s %9s %8s  %s\n", "pass", "ms wall", "ms cpu", "GFLOP/s", "/sgemm", "oneDNN implementation");
  double sum = 0, sum_cpu = 0;
  for (const auto& name : t.order) {
    sum += t.median(name, false);
    sum_cpu += t.median(name);
    if (!t.flops.count(name)) continue;
    const double ms = t.median(name), gf = t.flops.at(name) / ms / 1e6;
    std::printf("  %-18s %8.3f %8.3f %9.1f %8.2f  %s\n", name.c_str(), t.median(name, false), ms, gf, gf / sgemm.cpu,
                t.note.at(name).c_str());
  }
  std::printf("\nthe other ops against memory bandwidth (STREAM over 64 MB arrays: copy %.1f GB/s, triad %.1f GB/s;\n"
              "/same-size: against a copy moving the op's own bytes; loss, averaging and update run on one thread):\n", dram.copy_gbs, dram.triad_gbs);
  std::printf("  %-26s %8s %8s %8s %8s %8s %10s\n", "op", "ms wall", "ms cpu", "MB", "GB/s", "/DRAM", "/same-size");
  for (const auto& name : t.order) {
    if (t.flops.count(name)) continue;
    const double ms = t.median(name), bytes = t.bytes.count(name) ? t.bytes.at(name) : 0;
    if (bytes == 0) {
      std::printf("  %-26s %8.3f %8.3f %8s  %s\n", name.c_str(), t.median(name, false), ms, "-",
                  t.note.count(name) ? t.note.at(name).c_str() : "");
      continue;
    }
    if (!copy_at.count(bytes)) copy_at[bytes] = stream_bandwidth(std::max<size_t>(1024, bytes / 8), 50).copy_gbs;
    const double gbs = bytes / ms / 1e6;
    std::printf("  %-26s %8.3f %8.3f %8.2f %8.1f %8.2f %10.2f  %s\n", name.c_str(), t.median(name, false), ms,
                bytes / 1e6, gbs, gbs / dram.copy_gbs, gbs / copy_at[bytes], t.note.count(name) ? t.note.at(name).c_str() : "");
  }
  std::printf("  bias: added inside the forward primitives, its gradient inside backward-weights: no pass of its own\n");
  std::printf("sum of the op medians %.2f ms wall, %.2f ms cpu per thread; step measured above %.2f ms wall\n", sum,
              sum_cpu, step_ms);
}

// Per layer, its forward and its backward ops (reorders included), median wall ms, in forward
// order: the lines tools/cifar_tools/cost_model reads ('<layer> forward X ms  backward Y ms').
void print_layer_lines(const OpTimes& t, const cifar::Network& net) {
  std::printf("\nper layer (wall ms, reorders included):\n");
  for (const auto& l : net.layers()) {
    double fwd = 0, bwd = 0;
    for (const auto& [name, who] : t.owner)
      if (who.first == l->name()) (who.second ? bwd : fwd) += t.median(name, false);
    std::printf("  %-6s forward %7.3f ms  backward %7.3f ms\n", l->name().c_str(), fwd, bwd);
  }
}

// Step time with ReLU fused against separate ReLU passes, alternated step by step (on a shared
// machine the load drifts within seconds): per round, the median wall time of each variant's
// steps and the sum of each one's process CPU time.
void ab_fuse(const cifar::ModelSpec& model, const dnnl::engine& eng, cifar::ParamArena& arena, size_t batch, cifar::NetworkOptions options,
             const int32_t* labels, int rounds, int steps, dnnl::stream& s) {
  options.fuse_relu = true;
  cifar::Network fused(model, eng, arena, batch, options);
  options.fuse_relu = false;
  cifar::Network plain(model, eng, arena, batch, options);
  std::copy(fused.input(), fused.input() + batch * 3072, plain.input());
  cifar::SgdMomentum sgd(arena.total_count(), 0.01f, 0.9f);
  auto step = [&](cifar::Network& net, std::vector<double>& wall, double& cpu) {
    const auto t0 = Clock::now();
    const double c0 = process_cpu_seconds();
    net.forward_backward(s, labels, batch);
    sgd.step(arena.params(), arena.grads());
    cpu += process_cpu_seconds() - c0;
    wall.push_back(1e3 * seconds_since(t0));
  };
  auto median = [](std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  std::vector<double> wall_ratios, cpu_ratios;
  for (int r = 0; r < rounds; ++r) {
    std::vector<double> wf, wp;
    double cf = 0, cp = 0;
    for (int i = 0; i < steps; ++i) {
      if ((i + r) % 2 == 0) step(fused, wf, cf), step(plain, wp, cp);
      else step(plain, wp, cp), step(fused, wf, cf);
    }
    wall_ratios.push_back(median(wp) / median(wf));
    cpu_ratios.push_back(cp / cf);
    std::printf("ab-fuse round %d: median wall fused %.3f ms, separate relu %.3f ms, separate/fused %.4f; cpu %.3f / %.3f ms, "
                "%.4f\n", r, median(wf), median(wp), wall_ratios.back(), 1e3 * cf / steps, 1e3 * cp / steps,
                cpu_ratios.back());
  }
  std::printf("ab-fuse over %d rounds of %d alternated steps: median separate/fused wall %.4f, cpu %.4f\n", rounds, steps,
              median(wall_ratios), median(cpu_ratios));
}

// The convolutions' algorithms as --conv-algo asks; with auto, the start-up probe's choice
// (its line per convolution printed).
cifar::NetworkOptions network_options(const cifar::ModelSpec& model, const dnnl::engine& eng, size_t batch, const std::string& conv_algo,
                                      cifar::ComputeDtype dtype) {
  cifar::NetworkOptions options;
  if (conv_algo == "auto") {
    const double p0 = cifar::now_seconds();
    const auto probes = cifar::probe_conv_algorithms(eng, model.convs, batch, dtype);
    std::printf("conv probe (%.2f s):\n", cifar::now_seconds() - p0);
    for (const auto& p : probes) {
      std::printf("  %s\n", p.summary().c_str());
      options.conv[p.layer] = p.chosen;
    }
    options.dtype = dtype;
  } else {
    options = cifar::uniform_conv_options(conv_algo == "winograd" ? cifar::ConvAlgo::winograd : cifar::ConvAlgo::direct,
                                          dtype, model.convs);
  }
  return options;
}

}  // namespace

std::vector<std::string> model_list() {
  std::vector<std::string> names;
  for (const cifar::ModelSpec* m : cifar::all_models()) names.push_back(m->name);
  return names;
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  CLI::App app{"training-step benchmark"};
  size_t batch = 128;
  int threads = 2, steps = 50, warmup = 5;
  bool per_layer = false;
  app.add_option("--batch", batch, "images per step")->capture_default_str()->check(at_least(1));
  app.add_option("--threads", threads, "OpenMP threads")->capture_default_str()->check(at_least(1));
  app.add_option("--steps", steps, "timed steps")->capture_default_str()->check(at_least(1));
  app.add_option("--warmup", warmup, "untimed steps first")->capture_default_str()->check(at_least(0));
  app.add_flag("--per-layer", per_layer, "time every op of a step; memory-bound ops against a STREAM bound");
  int ab_rounds = 0;
  app.add_option("--ab-fuse", ab_rounds, "rounds of fused-ReLU against separate-ReLU step times, alternated")
      ->check(at_least(0));
  std::string conv_algo = "direct", compute_dtype = "fp32";
  app.add_option("--conv-algo", conv_algo, "convolution algorithm: direct | auto (probe) | winograd")
      ->check(CLI::IsMember({"direct", "auto", "winograd"}));
  app.add_option("--compute-dtype", compute_dtype, "arithmetic of the convolutions and fc1: fp32 | bf16")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  std::string model_name = "simplecnn";
  app.add_option("--model", model_name, "the network: " + cifar::model_names(" | "))
      ->check(CLI::IsMember(model_list()));
  std::string fuse_relu = "on";
  app.add_option("--fuse-relu", fuse_relu, "ReLU as a post-op of the layer before (on) or separate passes (off)")
      ->check(CLI::IsMember({"on", "off"}));
  std::string pool = "kernel";
  app.add_option("--pool", pool, "max pooling by the hand-written kernel or oneDNN's pooling (to compare)")
      ->check(CLI::IsMember({"kernel", "onednn"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = bench_cli_exit(app, e, "train_step_bench");
    MPI_Finalize();
    return rc;
  }
  omp_set_num_threads(threads);
  const cifar::ComputeDtype dtype = compute_dtype == "bf16" ? cifar::ComputeDtype::bf16 : cifar::ComputeDtype::fp32;
  if (dtype == cifar::ComputeDtype::bf16 && !cifar::cpu_has_native_bf16()) {
    std::fprintf(stderr, "--compute-dtype bf16: this CPU has neither avx512_bf16 nor AMX\n");
    MPI_Finalize();
    return 1;
  }

  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream s(eng);
  cifar::ParamArena arena;
  const cifar::ModelSpec& model = cifar::find_model(model_name);
  model.register_tensors(arena);
  model.initialize(arena, 1);
  cifar::NetworkOptions options = network_options(model, eng, batch, conv_algo, dtype);
  options.fuse_relu = fuse_relu == "on";
  options.pool_kernel = pool == "kernel";
  cifar::Network net(model, eng, arena, batch, options);
  cifar::SgdMomentum sgd(arena.total_count(), 0.01f, 0.9f);
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> u(-1, 1);
  for (size_t i = 0; i < batch * 3072; ++i) net.input()[i] = u(gen);
  std::vector<int32_t> labels(batch);
  for (auto& l : labels) l = static_cast<int32_t>(gen() % 10);

  for (int i = 0; i < warmup; ++i) {
    net.forward_backward(s, labels.data(), batch);
    sgd.step(arena.params(), arena.grads());
  }
  auto t0 = Clock::now();
  const double cpu0 = process_cpu_seconds();
  for (int i = 0; i < steps; ++i) {
    net.forward_backward(s, labels.data(), batch);
    sgd.step(arena.params(), arena.grads());
  }
  const double t = seconds_since(t0), t_step = t;
  const double cpu = process_cpu_seconds() - cpu0;
  const double ips = steps * batch / t;
  const double gflops = ips * train_flops_per_image(net, batch) / 1e9;
  const Rate sgemm_rate = sgemm_gflops(threads);
  const double sgemm = sgemm_rate.wall;
  omp_set_num_threads(threads);
  std::printf("conv-algo %s compute-dtype %s threads %d batch %zu steps %d: %.2f ms/step, %.0f images/s, %.1f GFLOP/s (model), "
              "sgemm %.1f GFLOP/s, model/sgemm %.2f, cpu %.2f ms/step\n",
              conv_algo.c_str(), compute_dtype.c_str(), threads, batch, steps, 1e3 * t / steps, ips, gflops, sgemm, gflops / sgemm, 1e3 * cpu / steps);

  if (per_layer) {
    const Bandwidth dram = stream_bandwidth(size_t(16) << 20, 10);  // 3 x 64 MB arrays: beyond any cache
    OpTimes t;
    for (int i = 0; i < steps; ++i) instrumented_step(net, arena, sgd, labels.data(), s, t);
    print_op_tables(t, sgemm_rate, 1e3 * t_step / steps, dram);
    print_layer_lines(t, net);
  }
  if (ab_rounds > 0) ab_fuse(model, eng, arena, batch, options, labels.data(), ab_rounds, steps, s);
  MPI_Finalize();
  return 0;
}
