// Speed of one training step (forward, backward, SGD update) of the reference network on one
// process, beside the same machine's oneDNN sgemm for scale, and a per-layer time breakdown.
//   train_step_bench [--batch 128] [--threads 2] [--steps 50] [--warmup 5] [--per-layer]
//                    [--conv-algo direct|auto|winograd] [--compute-dtype fp32|bf16]
// Prints images/s, achieved GFLOP/s (model FLOPs counted analytically) and sgemm GFLOP/s; with
// auto, the start-up probe's line per convolution (its timings and the algorithms chosen).
#include <CLI/CLI.hpp>
#include <dnnl.hpp>
#include <mpi.h>
#include <omp.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <map>
#include <random>
#include <vector>

#include "cifar_mpi/model/conv_probe.hpp"
#include "cifar_mpi/model/layers/conv2d.hpp"
#include "cifar_mpi/model/simple_cnn.hpp"
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

// Multiply-adds of one image's forward pass; a training step is ~3x (forward, backward data,
// backward weights; conv1 has no backward-data, which we subtract).
double forward_flops_per_image() {
  const double conv1 = 2.0 * 32 * 30 * 30 * 3 * 9, conv2 = 2.0 * 64 * 13 * 13 * 32 * 9;
  const double fc1 = 2.0 * 128 * 2304, fc2 = 2.0 * 10 * 128;
  return conv1 + conv2 + fc1 + fc2;
}
double train_flops_per_image() {
  const double conv1 = 2.0 * 32 * 30 * 30 * 3 * 9;
  return 3 * forward_flops_per_image() - conv1;
}

double sgemm_gflops(int threads) {
  const int n = 1024;
  std::vector<float> a(size_t(n) * n, 1.0f), b(size_t(n) * n, 0.5f), c(size_t(n) * n);
  omp_set_num_threads(threads);
  dnnl_sgemm('N', 'N', n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);  // warm-up
  const int reps = 20;
  auto t0 = Clock::now();
  for (int r = 0; r < reps; ++r) dnnl_sgemm('N', 'N', n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
  return 2.0 * n * n * n * reps / seconds_since(t0) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  CLI::App app{"training-step benchmark"};
  size_t batch = 128;
  int threads = 2, steps = 50, warmup = 5;
  bool per_layer = false;
  app.add_option("--batch", batch)->check(CLI::PositiveNumber);
  app.add_option("--threads", threads)->check(CLI::PositiveNumber);
  app.add_option("--steps", steps)->check(CLI::PositiveNumber);
  app.add_option("--warmup", warmup)->check(CLI::NonNegativeNumber);
  app.add_flag("--per-layer", per_layer, "time each layer's forward and backward");
  std::string conv_algo = "direct", compute_dtype = "fp32";
  app.add_option("--conv-algo", conv_algo, "convolution algorithm: direct | auto (probe) | winograd")
      ->check(CLI::IsMember({"direct", "auto", "winograd"}));
  app.add_option("--compute-dtype", compute_dtype, "convolution arithmetic: fp32 | bf16")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  CLI11_PARSE(app, argc, argv);
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
  cifar::register_simple_cnn(arena);
  cifar::init_pytorch_default(arena, 1);
  cifar::NetworkOptions options;
  if (conv_algo == "auto") {
    const double p0 = cifar::now_seconds();
    const auto probes = cifar::probe_conv_algorithms(eng, batch, dtype);
    std::printf("conv probe (%.2f s):\n", cifar::now_seconds() - p0);
    for (const auto& p : probes) {
      std::printf("  %s\n", p.summary().c_str());
      options.conv[p.layer] = p.chosen;
    }
    options.dtype = dtype;
  } else {
    options = cifar::uniform_conv_options(conv_algo == "winograd" ? cifar::ConvAlgo::winograd : cifar::ConvAlgo::direct,
                                          dtype);
  }
  cifar::SimpleCnn net(eng, arena, batch, options);
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
  const double t = seconds_since(t0);
  const double cpu = process_cpu_seconds() - cpu0;
  const double ips = steps * batch / t;
  const double gflops = ips * train_flops_per_image() / 1e9;
  const double sgemm = sgemm_gflops(threads);
  omp_set_num_threads(threads);
  std::printf("conv-algo %s compute-dtype %s threads %d batch %zu steps %d: %.2f ms/step, %.0f images/s, %.1f GFLOP/s (model), "
              "sgemm %.1f GFLOP/s, model/sgemm %.2f, cpu %.2f ms/step\n",
              conv_algo.c_str(), compute_dtype.c_str(), threads, batch, steps, 1e3 * t / steps, ips, gflops, sgemm, gflops / sgemm, 1e3 * cpu / steps);

  if (per_layer) {
    std::map<std::string, std::pair<double, double>> times;
    auto& layers = net.layers();
    for (int i = 0; i < steps; ++i) {
      for (auto& l : layers) {
        auto t1 = Clock::now();
        l->forward(s);
        s.wait();
        times[l->name()].first += seconds_since(t1);
      }
      for (size_t k = layers.size(); k-- > 0;) {
        auto t1 = Clock::now();
        layers[k]->backward(s);
        s.wait();
        times[layers[k]->name()].second += seconds_since(t1);
      }
    }
    for (auto& l : layers) {
      std::string algo;
      if (const auto* c = dynamic_cast<const cifar::Conv2d*>(l.get()))
        algo = std::string("  (") + cifar::conv_algo_name(c->algos().forward) + "/" +
               cifar::conv_algo_name(c->algos().backward_data) + "/" + cifar::conv_algo_name(c->algos().backward_weights) +
               ": " + c->impl_names()[0] + ")";
      std::printf("  %-6s forward %7.3f ms  backward %7.3f ms%s\n", l->name().c_str(),
                  1e3 * times[l->name()].first / steps, 1e3 * times[l->name()].second / steps, algo.c_str());
    }
  }
  MPI_Finalize();
  return 0;
}
