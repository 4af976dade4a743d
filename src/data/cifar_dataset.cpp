#include "cifar_mpi/data/cifar_dataset.hpp"

#include <array>
#include <memory>
#include <string>
#include <system_error>

#include "cifar_mpi/util/error.hpp"
#include "cifar_mpi/util/mapped_file.hpp"

namespace cifar {
namespace {

namespace fs = std::filesystem;

// Checks a file before reading it and returns its size in bytes. Uses the error_code overloads
// so that a failure surfaces as a one-line cifar::Error rather than a fs::filesystem_error.
size_t checked_file_size(const fs::path& file) {
  std::error_code ec;
  const fs::file_status status = fs::status(file, ec);
  if (!fs::exists(status)) throw Error("CIFAR-10 file not found: " + file.string());
  if (!fs::is_regular_file(status)) throw Error("CIFAR-10 file is not a regular file: " + file.string());
  const uintmax_t bytes = fs::file_size(file, ec);
  if (ec) throw Error("cannot stat CIFAR-10 file " + file.string() + ": " + ec.message());
  if (bytes == 0) throw Error("CIFAR-10 file is empty: " + file.string());
  if (bytes % kRecordBytes != 0)
    throw Error("CIFAR-10 file " + file.string() + " is truncated: " + std::to_string(bytes) +
                " bytes is not a multiple of the " + std::to_string(kRecordBytes) + "-byte record");
  return static_cast<size_t>(bytes);
}

void require_directory(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw Error("CIFAR-10 data directory " + dir.string() + " is a file: name the folder that holds data_batch_1.bin");
  if (!fs::is_directory(dir, ec))
    throw Error("CIFAR-10 data directory not found: " + dir.string() +
                " (run tools/get_cifar10.sh to unpack or download it)");
}

}  // namespace

// torchvision's ToTensor + Normalize(0.5, 0.5) in float32, step by step as PyTorch evaluates it,
// so that our inputs are bit-identical to the peer's. 256 possible bytes: one table lookup each.
const std::array<float, 256>& normalisation_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> values{};
    for (size_t byte = 0; byte < values.size(); ++byte) {
      const float scaled = static_cast<float>(byte) / 255.0f;
      values[byte] = (scaled - 0.5f) / 0.5f;
    }
    return values;
  }();
  return table;
}

CifarSet load_cifar_files(const std::vector<std::filesystem::path>& files) {
  // Validate every file's size first: a bad last file fails before 150 MB have been read.
  std::vector<size_t> file_bytes;
  size_t total_records = 0;
  for (const auto& file : files) {
    file_bytes.push_back(checked_file_size(file));
    total_records += file_bytes.back() / kRecordBytes;
  }

  CifarSet set;
  set.images.reserve(total_records);
  set.labels.reserve(total_records);
  for (size_t f = 0; f < files.size(); ++f) {
    const auto file = std::make_shared<const MappedFile>(files[f], "CIFAR-10 file");
    if (file->size() != file_bytes[f])
      throw Error("CIFAR-10 file " + files[f].string() + " changed size while being read (" +
                  std::to_string(file_bytes[f]) + " -> " + std::to_string(file->size()) + " bytes)");
    const size_t records = file_bytes[f] / kRecordBytes;
    for (size_t r = 0; r < records; ++r) {
      const uint8_t* record = file->data() + r * kRecordBytes;
      if (record[0] >= kNumClasses)
        throw Error("CIFAR-10 file " + files[f].string() + ": record " + std::to_string(r) + " has label " +
                    std::to_string(record[0]) + ", expected 0-9");
      set.labels.push_back(record[0]);
      set.images.push_back(record + 1);
    }
    set.storage.push_back(file);
  }
  return set;
}

CifarSet make_cifar_set(std::vector<uint8_t> pixels, std::vector<int32_t> labels) {
  if (pixels.size() != labels.size() * kImageBytes)
    throw Error("make_cifar_set: " + std::to_string(pixels.size()) + " pixel bytes for " +
                std::to_string(labels.size()) + " labels (expected " + std::to_string(labels.size() * kImageBytes) + ")");
  auto owned = std::make_shared<const std::vector<uint8_t>>(std::move(pixels));
  CifarSet set;
  set.labels = std::move(labels);
  for (size_t i = 0; i < set.labels.size(); ++i) set.images.push_back(owned->data() + i * kImageBytes);
  set.storage.push_back(std::move(owned));
  return set;
}

CifarSet load_cifar_train(const std::filesystem::path& dir) {
  require_directory(dir);
  std::vector<std::filesystem::path> files;
  for (int batch = 1; batch <= 5; ++batch) files.push_back(dir / ("data_batch_" + std::to_string(batch) + ".bin"));
  return load_cifar_files(files);
}

CifarSet load_cifar_test(const std::filesystem::path& dir) {
  require_directory(dir);
  return load_cifar_files({dir / "test_batch.bin"});
}

void gather_batch(const CifarSet& set, std::span<const size_t> indices, float* images, int32_t* labels) {
  const std::array<float, 256>& normalised = normalisation_table();
  for (size_t i = 0; i < indices.size(); ++i) {
    const size_t index = indices[i];
    if (index >= set.size())
      throw Error("gather_batch: index " + std::to_string(index) + " is outside the set of " +
                  std::to_string(set.size()) + " records");
    const uint8_t* source = set.image(index);
    prefetch_next_image(set, indices, i);
    float* destination = images + i * kImageBytes;
    for (size_t p = 0; p < kImageBytes; ++p) destination[p] = normalised[source[p]];
    labels[i] = set.labels[index];
  }
}

}  // namespace cifar
