#pragma once
// CIFAR-10 in its official binary layout: records of 3,073 bytes, one label byte (0-9) then
// 1,024 red, 1,024 green and 1,024 blue bytes of a 32x32 image in row-major order.
// Pixels stay bytes in the files themselves, mapped read-only (util/mapped_file.hpp: the ranks
// of a host share the page cache's one copy instead of each holding 150 MB, and start-up touches
// no fresh memory), and are normalised when a batch is gathered.
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <vector>

namespace cifar {

inline constexpr size_t kImageChannels = 3;
inline constexpr size_t kImageSide = 32;
inline constexpr size_t kImageBytes = kImageChannels * kImageSide * kImageSide;  // 3,072
inline constexpr size_t kRecordBytes = 1 + kImageBytes;                           // 3,073
inline constexpr size_t kNumClasses = 10;

struct CifarSet {
  std::vector<const uint8_t*> images;        // (n): image i's 3 x 32 x 32 raw bytes, CHW
  std::vector<int32_t> labels;               // (n) in 0..9
  std::vector<std::shared_ptr<const void>> storage;  // what `images` point into (mapped files)
  const uint8_t* image(size_t i) const { return images[i]; }
  size_t size() const { return labels.size(); }
};

// Asks for the bytes of the batch's next image (indices[i + 1]) while image i is converted. The
// images sit at random places in mapped files of 4 KB pages: each costs TLB and cache misses that
// the hardware prefetcher, which follows strides, does not foresee (gathering 256 random images
// 0.46-0.69 -> 0.35-0.55 ms with it; from a plain vector in memory 0.33-0.35 ms).
inline void prefetch_next_image(const CifarSet& set, std::span<const size_t> indices, size_t i) {
  if (i + 1 >= indices.size() || indices[i + 1] >= set.size()) return;
  const uint8_t* image = set.image(indices[i + 1]);
  for (size_t offset = 0; offset < kImageBytes; offset += 64) __builtin_prefetch(image + offset);
}

// A set held in memory: `pixels` (n, 3, 32, 32) bytes, `labels` (n). For tests and tools.
CifarSet make_cifar_set(std::vector<uint8_t> pixels, std::vector<int32_t> labels);

// Reads and validates the files in order, concatenated. Throws cifar::Error with a one-line
// message naming the file and the problem: missing, empty, size not a multiple of 3,073
// (truncated), label outside 0-9 (with the record index).
CifarSet load_cifar_files(const std::vector<std::filesystem::path>& files);

// dir/data_batch_1.bin ... data_batch_5.bin; a missing directory is named as such.
CifarSet load_cifar_train(const std::filesystem::path& dir);
// dir/test_batch.bin
CifarSet load_cifar_test(const std::filesystem::path& dir);

// The float each pixel byte becomes: torchvision's ToTensor + Normalize(0.5, 0.5) in float32,
// (x/255 - 0.5)/0.5, as PyTorch rounds it. Shared by every gather so all normalise identically.
const std::array<float, 256>& normalisation_table();

// Copies the records `indices` into a batch: images (indices.size(), 3, 32, 32) as float,
// normalised like the peer's ToTensor + Normalize(0.5, 0.5): (x/255 - 0.5)/0.5; labels (n).
void gather_batch(const CifarSet& set, std::span<const size_t> indices, float* images, int32_t* labels);

}  // namespace cifar
