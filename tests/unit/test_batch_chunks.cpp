// batch_chunks (--balance dynamic): the sizes add up to the step's images, never grow, stay
// within [smallest, largest] but for a last remainder, and follow guided self-scheduling (about a
// 2N-th of what is left, as a power of two).
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "cifar_mpi/app/batch_chunks.hpp"

namespace {

using cifar::batch_chunks;

TEST(BatchChunks, GlobalBatch256OnTwoRanks) {
  EXPECT_EQ(batch_chunks(256, 2, 8, 64), (std::vector<size_t>{64, 32, 32, 32, 16, 16, 16, 8, 8, 8, 8, 8, 8}));
}

TEST(BatchChunks, AddUpNeverGrowAndStayInBounds) {
  for (const size_t images : {1, 7, 8, 80, 255, 256, 1000, 4096})
    for (const int ranks : {1, 2, 3, 8})
      for (const size_t smallest : {1, 8, 16}) {
        const auto c = batch_chunks(images, ranks, smallest, 64);
        ASSERT_EQ(std::accumulate(c.begin(), c.end(), size_t{0}), images) << images << " " << ranks;
        for (size_t i = 0; i < c.size(); ++i) {
          EXPECT_LE(c[i], 64u);
          if (i + 1 < c.size()) EXPECT_GE(c[i], smallest) << "only the last may be a remainder";
          if (i > 0) EXPECT_LE(c[i], c[i - 1]) << "chunks shrink";
        }
      }
}

TEST(BatchChunks, FewerImagesThanTheSmallestChunkAreOneChunk) {
  EXPECT_EQ(batch_chunks(5, 2, 8, 64), (std::vector<size_t>{5}));
  EXPECT_TRUE(batch_chunks(0, 2, 8, 64).empty());
}

TEST(BatchChunks, MoreRanksMeanSmallerFirstChunks) {
  EXPECT_EQ(batch_chunks(1024, 1, 8, 1024).front(), 512u);
  EXPECT_EQ(batch_chunks(1024, 4, 8, 1024).front(), 128u);
}

}  // namespace
