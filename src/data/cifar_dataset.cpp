#include "cifar_mpi/data/cifar_dataset.hpp"

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>

#include <sys/mman.h>

#include "cifar_mpi/util/error.hpp"

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

// Allocates room for `bytes` bytes in `buffer` and, before the memory is first touched, asks Linux
// to back it with 2 MB pages (transparent huge pages are often in "madvise" mode). On this kind of
// VM a 4 KB page fault costs ~20 us: ~0.7 s to touch the 150 MB of training pixels, ~30 ms with
// huge pages. It is advice only; where the kernel declines, nothing changes.
void reserve_preferring_huge_pages(std::vector<uint8_t>& buffer, size_t bytes) {
  buffer.reserve(bytes);
#ifdef MADV_HUGEPAGE
  constexpr uintptr_t kHugePage = uintptr_t{2} << 20;
  const auto start = reinterpret_cast<uintptr_t>(buffer.data());
  const uintptr_t first = (start + kHugePage - 1) & ~(kHugePage - 1);
  const uintptr_t last = (start + bytes) & ~(kHugePage - 1);
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#endif
}

// The whole file in one fread into `contents`, which the files of a set share: fresh memory
// costs a page fault per page on a VM, so each file does not get its own.
void read_whole_file(const fs::path& file, size_t bytes, std::vector<uint8_t>& contents) {
  struct Closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::unique_ptr<std::FILE, Closer> stream(std::fopen(file.c_str(), "rb"));
  if (!stream) throw Error("cannot open CIFAR-10 file " + file.string() + ": " + std::strerror(errno));
  if (contents.capacity() < bytes) {
    contents = {};
    reserve_preferring_huge_pages(contents, bytes);
  }
  contents.resize(bytes);
  const size_t got = std::fread(contents.data(), 1, bytes, stream.get());
  if (got != bytes) {
    const std::string reason = std::ferror(stream.get()) ? std::strerror(errno) : "unexpected end of file";
    throw Error("read error on CIFAR-10 file " + file.string() + ": got " + std::to_string(got) + " of " +
                std::to_string(bytes) + " bytes (" + reason + ")");
  }
}

void require_directory(const fs::path& dir) {
  std::error_code ec;
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
  reserve_preferring_huge_pages(set.pixels, total_records * kImageBytes);
  set.pixels.resize(total_records * kImageBytes);
  set.labels.resize(total_records);
  size_t next_record = 0;
  std::vector<uint8_t> contents;
  for (size_t f = 0; f < files.size(); ++f) {
    read_whole_file(files[f], file_bytes[f], contents);
    const size_t records = file_bytes[f] / kRecordBytes;
    for (size_t r = 0; r < records; ++r) {
      const uint8_t* record = contents.data() + r * kRecordBytes;
      if (record[0] >= kNumClasses)
        throw Error("CIFAR-10 file " + files[f].string() + ": record " + std::to_string(r) + " has label " +
                    std::to_string(record[0]) + ", expected 0-9");
      set.labels[next_record] = record[0];
      std::memcpy(set.pixels.data() + next_record * kImageBytes, record + 1, kImageBytes);
      ++next_record;
    }
  }
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
    const uint8_t* source = set.pixels.data() + index * kImageBytes;
    float* destination = images + i * kImageBytes;
    for (size_t p = 0; p < kImageBytes; ++p) destination[p] = normalised[source[p]];
    labels[i] = set.labels[index];
  }
}

}  // namespace cifar
