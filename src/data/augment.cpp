#include "cifar_mpi/data/augment.hpp"

#include <algorithm>
#include <array>

#include "cifar_mpi/util/error.hpp"

namespace cifar {
namespace {

// splitmix64's output function (Steele, Lea, Flood 2014): a bijection on 64 bits whose every
// output bit depends on every input bit, so consecutive indices give unrelated draws.
uint64_t splitmix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

constexpr uint32_t kOffsets = 2 * kCropPadding + 1;  // 9 crop positions per axis
constexpr int kSide = static_cast<int>(kImageSide);
constexpr size_t kPlane = kImageSide * kImageSide;

}  // namespace

Augment parse_augment(std::string_view name) {
  if (name == "none") return Augment::none;
  if (name == "crop-flip") return Augment::crop_flip;
  throw Error("augment '" + std::string(name) + "' is not one of none, crop-flip");
}

std::string to_string(Augment augment) { return augment == Augment::none ? "none" : "crop-flip"; }

AugmentDraw augment_draw(uint64_t seed, uint64_t epoch, uint64_t index) {
  const uint64_t h = splitmix64(splitmix64(splitmix64(seed) ^ epoch) ^ index);
  AugmentDraw draw;
  draw.top = static_cast<uint32_t>(((h & 0xffffffffull) * kOffsets) >> 32);
  draw.left = static_cast<uint32_t>((((h >> 32) & 0x7fffffffull) * kOffsets) >> 31);
  draw.flip = (h >> 63) != 0;
  return draw;
}

void augment_image(const uint8_t* source, const AugmentDraw& draw, float* destination) {
  if (draw.top >= kOffsets || draw.left >= kOffsets) throw Error("augment_image: crop offset outside 0..8");
  const std::array<float, 256>& normalised = normalisation_table();
  const float pad = normalised[0];  // a zero byte of padding, normalised: -1
  // Output column x reads source column x + shift_x; columns [x_begin, x_end) fall inside it.
  const int shift_y = static_cast<int>(draw.top) - static_cast<int>(kCropPadding);
  const int shift_x = static_cast<int>(draw.left) - static_cast<int>(kCropPadding);
  const int x_begin = std::max(0, -shift_x), x_end = std::min(kSide, kSide - shift_x);
  for (size_t c = 0; c < kImageChannels; ++c) {
    for (int y = 0; y < kSide; ++y) {
      float* row = destination + c * kPlane + static_cast<size_t>(y) * kImageSide;  // (32)
      const int source_y = y + shift_y;
      if (source_y < 0 || source_y >= kSide) {
        std::fill(row, row + kSide, pad);
        continue;
      }
      const uint8_t* source_row = source + c * kPlane + static_cast<size_t>(source_y) * kImageSide;  // (32)
      if (!draw.flip) {
        for (int x = 0; x < x_begin; ++x) row[x] = pad;
        for (int x = x_begin; x < x_end; ++x) row[x] = normalised[source_row[x + shift_x]];
        for (int x = x_end; x < kSide; ++x) row[x] = pad;
      } else {
        float* mirrored = row + kSide - 1;  // mirrored[-x] is output column 31 - x
        for (int x = 0; x < x_begin; ++x) mirrored[-x] = pad;
        for (int x = x_begin; x < x_end; ++x) mirrored[-x] = normalised[source_row[x + shift_x]];
        for (int x = x_end; x < kSide; ++x) mirrored[-x] = pad;
      }
    }
  }
}

void gather_batch_augmented(const CifarSet& set, std::span<const size_t> indices, uint64_t seed, uint64_t epoch,
                            float* images, int32_t* labels) {
  for (size_t i = 0; i < indices.size(); ++i) {
    const size_t index = indices[i];
    if (index >= set.size())
      throw Error("gather_batch_augmented: index " + std::to_string(index) + " is outside the set of " +
                  std::to_string(set.size()) + " records");
    prefetch_next_image(set, indices, i);
    augment_image(set.image(index), augment_draw(seed, epoch, index), images + i * kImageBytes);
    labels[i] = set.labels[index];
  }
}

void gather_training_batch(const CifarSet& set, std::span<const size_t> indices, Augment augment, uint64_t seed,
                           uint64_t epoch, float* images, int32_t* labels) {
  if (augment == Augment::none)
    gather_batch(set, indices, images, labels);
  else
    gather_batch_augmented(set, indices, seed, epoch, images, labels);
}

}  // namespace cifar
