// Crop-flip augmentation against a naive reference written here (pad into a 40x40 canvas of zero
// bytes, crop at (top, left), mirror, normalise with torchvision's formula), compared bit for bit;
// the draws' dependence on (seed, epoch, index) alone; their spread; and `none` being gather_batch.
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <random>
#include <set>
#include <vector>

#include "cifar_mpi/data/augment.hpp"
#include "cifar_mpi/data/cifar_dataset.hpp"
#include "cifar_mpi/util/error.hpp"

namespace cifar {
namespace {

constexpr size_t kSide = 32, kCanvas = 40;

CifarSet random_set(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> pixels(n * kImageBytes);
  std::vector<int32_t> labels(n);
  // Bytes 1..255 only, so a pixel that reads as 0 can only be padding.
  for (uint8_t& p : pixels) p = static_cast<uint8_t>(1 + rng() % 255);
  for (size_t i = 0; i < n; ++i) labels[i] = static_cast<int32_t>(rng() % kNumClasses);
  return make_cifar_set(std::move(pixels), std::move(labels));
}

// torchvision, one transform at a time: RandomCrop(32, padding=4) on bytes, RandomHorizontalFlip,
// then ToTensor + Normalize(0.5, 0.5).
std::vector<float> reference_augment(const uint8_t* image, const AugmentDraw& draw) {
  std::vector<uint8_t> canvas(kImageChannels * kCanvas * kCanvas, 0);  // (3, 40, 40)
  for (size_t c = 0; c < kImageChannels; ++c)
    for (size_t y = 0; y < kSide; ++y)
      for (size_t x = 0; x < kSide; ++x)
        canvas[(c * kCanvas + y + 4) * kCanvas + x + 4] = image[(c * kSide + y) * kSide + x];
  std::vector<uint8_t> crop(kImageBytes);  // (3, 32, 32)
  for (size_t c = 0; c < kImageChannels; ++c)
    for (size_t y = 0; y < kSide; ++y)
      for (size_t x = 0; x < kSide; ++x)
        crop[(c * kSide + y) * kSide + x] = canvas[(c * kCanvas + y + draw.top) * kCanvas + x + draw.left];
  std::vector<float> out(kImageBytes);
  for (size_t c = 0; c < kImageChannels; ++c)
    for (size_t y = 0; y < kSide; ++y)
      for (size_t x = 0; x < kSide; ++x) {
        const size_t from_x = draw.flip ? kSide - 1 - x : x;
        const float scaled = static_cast<float>(crop[(c * kSide + y) * kSide + from_x]) / 255.0f;
        out[(c * kSide + y) * kSide + x] = (scaled - 0.5f) / 0.5f;
      }
  return out;
}

void expect_bitwise_equal(const float* got, const float* want, size_t n, const std::string& what) {
  for (size_t p = 0; p < n; ++p)
    if (std::memcmp(&got[p], &want[p], sizeof(float)) != 0) {
      ADD_FAILURE() << what << ": element " << p << " is " << got[p] << ", want " << want[p];
      return;
    }
}

// Every one of the 9 x 9 x 2 draws, one image each, against the reference.
TEST(Augment, EveryDrawMatchesNaiveReference) {
  const CifarSet set = random_set(1, 3);
  std::vector<float> got(kImageBytes);
  for (uint32_t top = 0; top <= 8; ++top)
    for (uint32_t left = 0; left <= 8; ++left)
      for (bool flip : {false, true}) {
        const AugmentDraw draw{top, left, flip};
        augment_image(set.image(0), draw, got.data());
        const std::vector<float> want = reference_augment(set.image(0), draw);
        expect_bitwise_equal(got.data(), want.data(), kImageBytes,
                             "top " + std::to_string(top) + " left " + std::to_string(left) + " flip " +
                                 std::to_string(flip));
      }
}

// A gathered batch: each sample is the reference under its own (seed, epoch, index) draw, labels follow.
TEST(Augment, GatheredBatchMatchesReferencePerSample) {
  const CifarSet set = random_set(40, 5);
  const std::vector<size_t> indices{7, 0, 39, 7, 12, 25, 3, 18, 31, 22, 9, 1};
  for (uint64_t epoch : {0u, 1u, 17u}) {
    std::vector<float> images(indices.size() * kImageBytes);  // (12, 3, 32, 32)
    std::vector<int32_t> labels(indices.size());
    gather_batch_augmented(set, indices, 42, epoch, images.data(), labels.data());
    for (size_t i = 0; i < indices.size(); ++i) {
      const std::vector<float> want =
          reference_augment(set.image(indices[i]), augment_draw(42, epoch, indices[i]));
      expect_bitwise_equal(images.data() + i * kImageBytes, want.data(), kImageBytes,
                           "epoch " + std::to_string(epoch) + " sample " + std::to_string(i));
      EXPECT_EQ(labels[i], set.labels[indices[i]]) << i;
    }
  }
}

// torchvision pads the raw image with 0 bytes: padding is -1 after normalisation, never 0.
TEST(Augment, PaddingIsAZeroByteNormalisedToMinusOne) {
  std::vector<uint8_t> white(kImageBytes, 255);
  std::vector<float> out(kImageBytes);
  augment_image(white.data(), AugmentDraw{0, 8, false}, out.data());  // 4 rows above, 4 columns right
  for (size_t c = 0; c < kImageChannels; ++c)
    for (size_t y = 0; y < kSide; ++y)
      for (size_t x = 0; x < kSide; ++x) {
        const float want = (y < 4 || x >= 28) ? -1.0f : 1.0f;
        ASSERT_EQ(out[(c * kSide + y) * kSide + x], want) << c << "," << y << "," << x;
      }
}

// The draw is a function of (seed, epoch, index): the same record gathered in another batch, at
// another position, split across "ranks" in any way, gives the same floats.
TEST(Augment, SampleDependsOnlyOnSeedEpochAndIndex) {
  const CifarSet set = random_set(30, 9);
  const std::vector<size_t> whole{4, 11, 29, 0, 17, 8};
  std::vector<float> images(whole.size() * kImageBytes);
  std::vector<int32_t> labels(whole.size());
  gather_batch_augmented(set, whole, 1234, 3, images.data(), labels.data());
  // Two "ranks" each gather part, in another order, with other records mixed in.
  const std::vector<std::vector<size_t>> parts{{17, 5, 4, 29}, {8, 0, 11, 2}};
  for (const auto& part : parts) {
    std::vector<float> part_images(part.size() * kImageBytes);
    std::vector<int32_t> part_labels(part.size());
    gather_batch_augmented(set, part, 1234, 3, part_images.data(), part_labels.data());
    for (size_t j = 0; j < part.size(); ++j)
      for (size_t i = 0; i < whole.size(); ++i)
        if (whole[i] == part[j])
          expect_bitwise_equal(part_images.data() + j * kImageBytes, images.data() + i * kImageBytes, kImageBytes,
                               "record " + std::to_string(part[j]));
  }
  // And the draw itself is a pure function.
  for (uint64_t index = 0; index < 100; ++index) {
    const AugmentDraw a = augment_draw(7, 2, index), b = augment_draw(7, 2, index);
    EXPECT_TRUE(a.top == b.top && a.left == b.left && a.flip == b.flip) << index;
  }
}

size_t count_differing_draws(uint64_t seed_a, uint64_t epoch_a, uint64_t seed_b, uint64_t epoch_b) {
  size_t differ = 0;
  for (uint64_t index = 0; index < 1000; ++index) {
    const AugmentDraw a = augment_draw(seed_a, epoch_a, index), b = augment_draw(seed_b, epoch_b, index);
    differ += (a.top != b.top || a.left != b.left || a.flip != b.flip);
  }
  return differ;
}

// Independent draws agree with probability 1/162; allow a generous margin.
TEST(Augment, OtherEpochsAndSeedsGiveOtherDraws) {
  EXPECT_GT(count_differing_draws(1, 0, 1, 1), 970u);
  EXPECT_GT(count_differing_draws(1, 5, 1, 6), 970u);
  EXPECT_GT(count_differing_draws(1, 0, 2, 0), 970u);
  // Chained, not XORed: (epoch 1, index i) is not (epoch 0, index i ^ 1).
  size_t same = 0;
  for (uint64_t index = 0; index < 1000; ++index) {
    const AugmentDraw a = augment_draw(1, 1, index), b = augment_draw(1, 0, index ^ 1);
    same += (a.top == b.top && a.left == b.left && a.flip == b.flip);
  }
  EXPECT_LT(same, 30u);
}

// Over 2,000 draws every offset 0..8 occurs on both axes, near 1/9 each, and about half flip.
TEST(Augment, DrawsCoverEveryOffsetAndFlipAboutHalf) {
  constexpr size_t kDraws = 2000;
  std::array<size_t, 9> tops{}, lefts{};
  size_t flips = 0;
  for (uint64_t index = 0; index < kDraws; ++index) {
    const AugmentDraw d = augment_draw(2024, 0, index);
    ASSERT_LE(d.top, 8u);
    ASSERT_LE(d.left, 8u);
    ++tops[d.top];
    ++lefts[d.left];
    flips += d.flip;
  }
  for (size_t k = 0; k <= 8; ++k) {
    // 2000/9 = 222 expected, standard deviation ~14: 150..300 is a 5-sigma band.
    EXPECT_GT(tops[k], 150u) << "top " << k;
    EXPECT_LT(tops[k], 300u) << "top " << k;
    EXPECT_GT(lefts[k], 150u) << "left " << k;
    EXPECT_LT(lefts[k], 300u) << "left " << k;
  }
  const double flip_rate = static_cast<double>(flips) / kDraws;
  EXPECT_GE(flip_rate, 0.4);
  EXPECT_LE(flip_rate, 0.6);
}

TEST(Augment, NoneIsGatherBatchBitwise) {
  const CifarSet set = random_set(20, 11);
  const std::vector<size_t> indices{19, 2, 2, 7, 0, 13};
  std::vector<float> plain(indices.size() * kImageBytes), none(indices.size() * kImageBytes, 7.0f);
  std::vector<int32_t> plain_labels(indices.size()), none_labels(indices.size(), -1);
  gather_batch(set, indices, plain.data(), plain_labels.data());
  gather_training_batch(set, indices, Augment::none, 99, 4, none.data(), none_labels.data());
  EXPECT_EQ(std::memcmp(plain.data(), none.data(), plain.size() * sizeof(float)), 0);
  EXPECT_EQ(plain_labels, none_labels);
  // The identity draw (no shift, no flip) is gather_batch too.
  std::vector<float> identity(kImageBytes);
  augment_image(set.image(19), AugmentDraw{}, identity.data());
  expect_bitwise_equal(identity.data(), plain.data(), kImageBytes, "identity draw");
}

TEST(Augment, CropFlipThroughTheTrainerCallMatchesGatherBatchAugmented) {
  const CifarSet set = random_set(10, 13);
  const std::vector<size_t> indices{3, 9, 0};
  std::vector<float> a(indices.size() * kImageBytes), b(indices.size() * kImageBytes);
  std::vector<int32_t> la(indices.size()), lb(indices.size());
  gather_training_batch(set, indices, Augment::crop_flip, 5, 1, a.data(), la.data());
  gather_batch_augmented(set, indices, 5, 1, b.data(), lb.data());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
  EXPECT_EQ(la, lb);
}

TEST(Augment, ParsesNamesAndRejectsBadInput) {
  EXPECT_EQ(parse_augment("none"), Augment::none);
  EXPECT_EQ(parse_augment("crop-flip"), Augment::crop_flip);
  EXPECT_EQ(to_string(Augment::crop_flip), "crop-flip");
  EXPECT_THROW(parse_augment("crop_flip"), Error);
  const CifarSet set = random_set(3, 1);
  const std::vector<size_t> outside{0, 3};
  std::vector<float> images(2 * kImageBytes);
  std::vector<int32_t> labels(2);
  EXPECT_THROW(gather_batch_augmented(set, outside, 0, 0, images.data(), labels.data()), Error);
  EXPECT_THROW(augment_image(set.image(0), AugmentDraw{9, 0, false}, images.data()), Error);
}

}  // namespace
}  // namespace cifar
