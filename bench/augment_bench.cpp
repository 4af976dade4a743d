// Cost of gathering a training batch with and without crop-flip augmentation, one thread.
//   augment_bench [--batch 128] [--images 10000] [--batches 2000]
// Gathers shuffled records from a synthetic set (30 MB at 10,000 images, larger than the caches,
// as the real 150 MB one is) and prints the median and mean time per batch of gather_batch and of
// gather_batch_augmented, and the difference: what --augment crop-flip adds to a training step.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "bench_cli.hpp"
#include "cifar_mpi/data/augment.hpp"
#include "cifar_mpi/data/cifar_dataset.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Timing {
  double median_ms, mean_ms;
};

// Times `gather(batch_indices, epoch)` once per batch, over the shuffled index list in order.
template <typename Gather>
Timing time_batches(const std::vector<size_t>& order, size_t batch, size_t batches, Gather gather) {
  std::vector<double> ms;
  const size_t per_pass = order.size() / batch;
  for (size_t b = 0; b < batches; ++b) {
    const std::span<const size_t> indices(order.data() + (b % per_pass) * batch, batch);
    const Clock::time_point t0 = Clock::now();
    gather(indices, b / per_pass);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  const double mean = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size());
  std::nth_element(ms.begin(), ms.begin() + static_cast<std::ptrdiff_t>(ms.size() / 2), ms.end());
  return {ms[ms.size() / 2], mean};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Time gather_batch with and without crop-flip augmentation"};
  size_t batch = 128, images = 10000, batches = 2000;
  app.add_option("--batch", batch, "images per batch")->check(at_least(1));
  app.add_option("--images", images, "records in the synthetic set")->check(at_least(1));
  app.add_option("--batches", batches, "batches timed per variant")->check(at_least(1));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return bench_cli_exit(app, e, "augment_bench");
  }
  if (images < batch) images = batch;

  std::mt19937_64 rng(1);
  std::vector<uint8_t> pixels(images * cifar::kImageBytes);
  std::vector<int32_t> set_labels(images);
  for (uint8_t& p : pixels) p = static_cast<uint8_t>(rng());
  for (int32_t& l : set_labels) l = static_cast<int32_t>(rng() % cifar::kNumClasses);
  const cifar::CifarSet set = cifar::make_cifar_set(std::move(pixels), std::move(set_labels));
  std::vector<size_t> order(images);
  std::iota(order.begin(), order.end(), size_t{0});
  std::shuffle(order.begin(), order.end(), rng);

  std::vector<float> out(batch * cifar::kImageBytes);  // (batch, 3, 32, 32)
  std::vector<int32_t> labels(batch);
  const auto plain = [&](std::span<const size_t> indices, size_t) {
    cifar::gather_batch(set, indices, out.data(), labels.data());
  };
  const auto augmented = [&](std::span<const size_t> indices, size_t epoch) {
    cifar::gather_batch_augmented(set, indices, 42, epoch, out.data(), labels.data());
  };
  // One untimed pass of each touches the set and the output buffer first.
  time_batches(order, batch, order.size() / batch, plain);
  time_batches(order, batch, order.size() / batch, augmented);
  // Interleave repeats so drift on a shared machine hits both alike; keep each one's best median.
  Timing best_plain{1e30, 1e30}, best_augmented{1e30, 1e30};
  for (int repeat = 0; repeat < 3; ++repeat) {
    const Timing p = time_batches(order, batch, batches, plain);
    const Timing a = time_batches(order, batch, batches, augmented);
    if (p.median_ms < best_plain.median_ms) best_plain = p;
    if (a.median_ms < best_augmented.median_ms) best_augmented = a;
  }
  std::printf("batch %zu, %zu synthetic images, %zu batches x 3 repeats, best repeat's median (mean) per batch:\n",
              batch, images, batches);
  std::printf("  gather_batch            %.3f ms (%.3f)\n", best_plain.median_ms, best_plain.mean_ms);
  std::printf("  gather_batch_augmented  %.3f ms (%.3f)\n", best_augmented.median_ms, best_augmented.mean_ms);
  std::printf("  augmentation adds       %.3f ms per batch\n", best_augmented.median_ms - best_plain.median_ms);
  return 0;
}
