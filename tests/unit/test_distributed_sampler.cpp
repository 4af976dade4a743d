// DistributedSampler against torch.utils.data.DistributedSampler's semantics: padding by
// wrap-around, drop_last truncation, rank striding, and reproducible shuffles.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <vector>

#include "cifar_mpi/data/distributed_sampler.hpp"
#include "cifar_mpi/util/error.hpp"

namespace cifar {
namespace {

std::vector<size_t> iota_list(size_t n) {
  std::vector<size_t> values(n);
  std::iota(values.begin(), values.end(), size_t{0});
  return values;
}

// Every rank's indices for one epoch.
std::vector<std::vector<size_t>> all_ranks(size_t n, int replicas, bool shuffle, uint64_t seed, bool drop_last,
                                           uint64_t epoch) {
  std::vector<std::vector<size_t>> per_rank;
  for (int rank = 0; rank < replicas; ++rank)
    per_rank.push_back(DistributedSampler(n, replicas, rank, shuffle, seed, drop_last).indices(epoch));
  return per_rank;
}

TEST(DistributedSampler, OneReplicaWithoutShuffleIsFileOrder) {
  const DistributedSampler sampler(7, 1, 0, false, 42, false);
  EXPECT_EQ(sampler.num_samples(), 7u);
  EXPECT_EQ(sampler.indices(0), iota_list(7));
  EXPECT_EQ(sampler.indices(5), iota_list(7));
}

TEST(DistributedSampler, PaddingWrapsAroundLikeTorch) {
  // n = 10, N = 4: the list 0..9 is padded with 0, 1 to 12 entries; rank r takes r, r+4, r+8.
  const auto per_rank = all_ranks(10, 4, false, 0, false, 0);
  EXPECT_EQ(per_rank[0], (std::vector<size_t>{0, 4, 8}));
  EXPECT_EQ(per_rank[1], (std::vector<size_t>{1, 5, 9}));
  EXPECT_EQ(per_rank[2], (std::vector<size_t>{2, 6, 0}));
  EXPECT_EQ(per_rank[3], (std::vector<size_t>{3, 7, 1}));
}

TEST(DistributedSampler, PaddingRepeatsTheListWhenItExceedsTheDataset) {
  // n = 2, N = 5: torch pads with (indices * 2)[:3] = 0, 1, 0.
  const auto per_rank = all_ranks(2, 5, false, 0, false, 0);
  const std::vector<std::vector<size_t>> expected{{0}, {1}, {0}, {1}, {0}};
  EXPECT_EQ(per_rank, expected);
}

TEST(DistributedSampler, UnionOverRanksIsTheListPaddedToAMultipleOfReplicas) {
  for (const bool shuffle : {false, true})
    for (const size_t n : {1u, 7u, 13u, 101u})
      for (size_t replicas = 1; replicas <= 5; ++replicas) {
        SCOPED_TRACE("shuffle " + std::to_string(shuffle) + " n " + std::to_string(n) + " N " + std::to_string(replicas));
        // One replica sees the whole (shuffled) list; with more, the ranks stride through it.
        const std::vector<size_t> list = DistributedSampler(n, 1, 0, shuffle, 9, false).indices(3);
        const auto per_rank = all_ranks(n, static_cast<int>(replicas), shuffle, 9, false, 3);
        const size_t per_rank_size = (n + replicas - 1) / replicas;
        std::vector<size_t> all;
        for (size_t rank = 0; rank < replicas; ++rank) {
          ASSERT_EQ(per_rank[rank].size(), per_rank_size);
          for (size_t k = 0; k < per_rank_size; ++k) EXPECT_EQ(per_rank[rank][k], list[(rank + k * replicas) % n]);
          all.insert(all.end(), per_rank[rank].begin(), per_rank[rank].end());
        }
        // As a multiset: every index once, plus the first `padding` entries of the list again.
        std::vector<size_t> expected = iota_list(n);
        for (size_t p = 0; p < per_rank_size * replicas - n; ++p) expected.push_back(list[p % n]);
        std::sort(all.begin(), all.end());
        std::sort(expected.begin(), expected.end());
        EXPECT_EQ(all, expected);
      }
}

TEST(DistributedSampler, DropLastTruncatesToAMultipleOfReplicas) {
  // n = 10, N = 4: 8 entries kept, 2 each; 8 and 9 are dropped.
  const auto per_rank = all_ranks(10, 4, false, 0, true, 0);
  const std::vector<std::vector<size_t>> expected{{0, 4}, {1, 5}, {2, 6}, {3, 7}};
  EXPECT_EQ(per_rank, expected);
  EXPECT_EQ(DistributedSampler(10, 4, 0, false, 0, true).num_samples(), 2u);
  // When N divides n, drop_last changes nothing.
  EXPECT_EQ(all_ranks(12, 4, false, 0, true, 0), all_ranks(12, 4, false, 0, false, 0));
  // Shuffled, the dropped entries are the tail of the permutation.
  const std::vector<size_t> list = DistributedSampler(10, 1, 0, true, 5, false).indices(2);
  const auto shuffled = all_ranks(10, 4, true, 5, true, 2);
  for (size_t rank = 0; rank < 4; ++rank) EXPECT_EQ(shuffled[rank], (std::vector<size_t>{list[rank], list[rank + 4]}));
}

TEST(DistributedSampler, ShuffleIsAReproduciblePermutationOfSeedAndEpoch) {
  const size_t n = 1000;
  const DistributedSampler sampler(n, 1, 0, true, 1234, false);
  const std::vector<size_t> epoch0 = sampler.indices(0);
  std::vector<size_t> sorted = epoch0;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, iota_list(n));
  EXPECT_NE(epoch0, iota_list(n));

  EXPECT_EQ(epoch0, sampler.indices(0));
  EXPECT_EQ(epoch0, DistributedSampler(n, 1, 0, true, 1234, false).indices(0));
  EXPECT_NE(epoch0, sampler.indices(1));
  EXPECT_NE(epoch0, DistributedSampler(n, 1, 0, true, 1235, false).indices(0));
  // Seed and epoch are not interchangeable.
  EXPECT_NE(DistributedSampler(n, 1, 0, true, 1, false).indices(2), DistributedSampler(n, 1, 0, true, 2, false).indices(1));
}

TEST(DistributedSampler, WithoutShuffleRanksBatchesTogetherAreTheFileOrderGlobalBatch) {
  const size_t n = 1000;
  const size_t batch = 8;
  for (int replicas = 1; replicas <= 4; ++replicas) {
    SCOPED_TRACE("N " + std::to_string(replicas));
    const size_t global_batch = batch * static_cast<size_t>(replicas);
    const auto per_rank = all_ranks(n, replicas, false, 0, false, 0);
    for (size_t step = 0; (step + 1) * global_batch <= n; ++step) {
      std::set<size_t> step_union;
      for (const auto& indices : per_rank)
        for (size_t k = step * batch; k < (step + 1) * batch; ++k) step_union.insert(indices[k]);
      std::set<size_t> expected;
      for (size_t i = step * global_batch; i < (step + 1) * global_batch; ++i) expected.insert(i);
      ASSERT_EQ(step_union, expected) << "step " << step;
    }
  }
}

TEST(DistributedSampler, InvalidArgumentsThrow) {
  EXPECT_THROW(DistributedSampler(10, 0, 0, false, 0, false), Error);
  EXPECT_THROW(DistributedSampler(10, -1, 0, false, 0, false), Error);
  EXPECT_THROW(DistributedSampler(10, 2, 2, false, 0, false), Error);
  EXPECT_THROW(DistributedSampler(10, 2, -1, false, 0, false), Error);
  EXPECT_THROW(DistributedSampler(0, 1, 0, false, 0, false), Error);
  EXPECT_NO_THROW(DistributedSampler(10, 2, 1, false, 0, false));
}

}  // namespace
}  // namespace cifar
