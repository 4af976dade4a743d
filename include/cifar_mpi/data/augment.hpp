#pragma once
// Training-time augmentation, torchvision's standard CIFAR pipeline:
//   RandomCrop(32, padding=4) -> RandomHorizontalFlip(p=0.5) -> ToTensor -> Normalize(0.5, 0.5)
// The crop pads the raw image with 0 bytes, so a padded pixel becomes (0/255 - 0.5)/0.5 = -1 after
// normalisation (not 0 in normalised space), exactly as torchvision does.
//
// Each sample's draw (crop offset, flip) is a counter-based hash of (seed, epoch, dataset index)
// only, not a sequential RNG: the augmented image is the same whatever the number of ranks, the
// rank that gathers it, its position in the batch, or whether the run was resumed.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "cifar_mpi/data/cifar_dataset.hpp"

namespace cifar {

enum class Augment { none, crop_flip };

// "none|crop-flip"; anything else throws cifar::Error naming the value and the accepted ones.
Augment parse_augment(std::string_view name);
std::string to_string(Augment augment);

inline constexpr size_t kCropPadding = 4;  // pixels of zero bytes on each side: a 40x40 canvas

// One sample's draw. (top, left) is the crop's corner in the padded 40x40 canvas, each in
// 0..2*kCropPadding as torchvision's RandomCrop.get_params draws them; the output pixel (y, x)
// before flipping is canvas(y + top, x + left) = raw(y + top - 4, x + left - 4), or 0 outside.
// flip mirrors the crop: out(y, x) = crop(y, 31 - x).
struct AugmentDraw {
  uint32_t top = kCropPadding, left = kCropPadding;  // the default is the identity
  bool flip = false;
};

// splitmix64 chained over seed, epoch, index (chained, not XORed together, so (epoch 1, index 2)
// and (epoch 2, index 1) differ). The offsets take the hash's low and high 31-32 bits by
// multiply-shift (bias below 1e-8), the flip its top bit.
AugmentDraw augment_draw(uint64_t seed, uint64_t epoch, uint64_t index);

// One image: source (3, 32, 32) bytes -> destination (3, 32, 32) normalised floats.
void augment_image(const uint8_t* source, const AugmentDraw& draw, float* destination);

// gather_batch with crop-flip: images (indices.size(), 3, 32, 32), labels (n); sample i drawn
// with augment_draw(seed, epoch, indices[i]). Throws cifar::Error for an index outside the set.
void gather_batch_augmented(const CifarSet& set, std::span<const size_t> indices, uint64_t seed, uint64_t epoch,
                            float* images, int32_t* labels);

// The trainer's one call: gather_batch for none (bit for bit), gather_batch_augmented otherwise.
void gather_training_batch(const CifarSet& set, std::span<const size_t> indices, Augment augment, uint64_t seed,
                           uint64_t epoch, float* images, int32_t* labels);

}  // namespace cifar
