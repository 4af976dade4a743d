#include "cifar_mpi/data/distributed_sampler.hpp"

#include <numeric>
#include <random>
#include <string>
#include <utility>

#include "cifar_mpi/util/error.hpp"

namespace cifar {
namespace {

// A uniform integer in [0, range) by Lemire's multiply-shift with rejection ("Fast Random Integer
// Generation in an Interval", 2019): unbiased, and unlike std::uniform_int_distribution its
// algorithm is fixed, so a (seed, epoch) gives the same order with every standard library.
uint64_t uniform_below(std::mt19937_64& engine, uint64_t range) {
  unsigned __int128 product = static_cast<unsigned __int128>(engine()) * range;
  uint64_t low = static_cast<uint64_t>(product);
  if (low < range) {
    const uint64_t threshold = (0 - range) % range;  // 2^64 mod range: the biased low values
    while (low < threshold) {
      product = static_cast<unsigned __int128>(engine()) * range;
      low = static_cast<uint64_t>(product);
    }
  }
  return static_cast<uint64_t>(product >> 64);
}

// A permutation of 0..n-1 determined by (seed, epoch) alone, so every rank draws the same one.
// std::seed_seq and std::mt19937_64 are specified exactly by the standard; the seed_seq gets all
// 128 bits of (seed, epoch) as 32-bit words, so distinct pairs give unrelated streams. The
// Fisher-Yates shuffle is written out because std::shuffle's algorithm is implementation-defined.
std::vector<size_t> permutation(size_t n, uint64_t seed, uint64_t epoch) {
  std::seed_seq seed_words{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                           static_cast<uint32_t>(epoch), static_cast<uint32_t>(epoch >> 32)};
  std::mt19937_64 engine(seed_words);
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  for (size_t i = n; i > 1; --i) {
    const size_t j = static_cast<size_t>(uniform_below(engine, i));
    std::swap(order[i - 1], order[j]);
  }
  return order;
}

}  // namespace

DistributedSampler::DistributedSampler(size_t dataset_size, int num_replicas, int rank, bool shuffle,
                                       uint64_t seed, bool drop_last)
    : dataset_size_(dataset_size),
      num_replicas_(num_replicas),
      rank_(rank),
      shuffle_(shuffle),
      seed_(seed),
      drop_last_(drop_last) {
  if (num_replicas < 1)
    throw Error("DistributedSampler: num_replicas must be at least 1, got " + std::to_string(num_replicas));
  if (rank < 0 || rank >= num_replicas)
    throw Error("DistributedSampler: rank " + std::to_string(rank) + " is outside 0.." +
                std::to_string(num_replicas - 1));
  if (dataset_size == 0) throw Error("DistributedSampler: the dataset is empty");
  const size_t replicas = static_cast<size_t>(num_replicas);
  // torch: with drop_last the tail that does not divide evenly is dropped, otherwise the list is
  // padded up to the next multiple of num_replicas.
  num_samples_ = (drop_last && dataset_size % replicas != 0) ? dataset_size / replicas
                                                             : (dataset_size + replicas - 1) / replicas;
}

std::vector<size_t> DistributedSampler::indices(uint64_t epoch) const {
  std::vector<size_t> order;
  if (shuffle_) order = permutation(dataset_size_, seed_, epoch);
  // Position p of the padded (or truncated) list is order[p % n]: torch pads with
  // indices[:padding], repeated when the padding exceeds n, which is exactly this wrap-around;
  // truncated lists never reach p >= n.
  const size_t replicas = static_cast<size_t>(num_replicas_);
  std::vector<size_t> mine(num_samples_);
  for (size_t k = 0; k < num_samples_; ++k) {
    const size_t position = (static_cast<size_t>(rank_) + k * replicas) % dataset_size_;
    mine[k] = shuffle_ ? order[position] : position;
  }
  return mine;
}

}  // namespace cifar
