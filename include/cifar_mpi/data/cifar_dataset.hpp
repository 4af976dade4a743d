#pragma once
// CIFAR-10 in its official binary layout: records of 3,073 bytes, one label byte (0-9) then
// 1,024 red, 1,024 green and 1,024 blue bytes of a 32x32 image in row-major order.
// Pixels are kept as bytes (150 MB for the training set instead of 600 MB as floats, which
// matters when 8 oversubscribed ranks each hold a copy) and normalised when a batch is gathered.
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

namespace cifar {

inline constexpr size_t kImageChannels = 3;
inline constexpr size_t kImageSide = 32;
inline constexpr size_t kImageBytes = kImageChannels * kImageSide * kImageSide;  // 3,072
inline constexpr size_t kRecordBytes = 1 + kImageBytes;                           // 3,073
inline constexpr size_t kNumClasses = 10;

struct CifarSet {
  std::vector<uint8_t> pixels;  // (n, 3, 32, 32) raw bytes, CHW per image
  std::vector<int32_t> labels;  // (n) in 0..9
  size_t size() const { return labels.size(); }
};

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
