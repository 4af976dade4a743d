// libFuzzer target for the CIFAR-10 reader: the input bytes become one file on disk, which
// load_cifar_files reads and validates; when it loads, gather_batch copies a few records and must
// reject an index past the end. cifar::Error is the expected outcome for a malformed file; a crash,
// a sanitizer report or any other exception is a finding.
//   tools/checks/run_fuzz.sh builds and runs it (tests/fuzz/corpus/cifar holds the seeds).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "cifar_mpi/data/cifar_dataset.hpp"
#include "cifar_mpi/util/error.hpp"

namespace {

namespace fs = std::filesystem;

// One file per fuzzing process (libFuzzer's -jobs/-workers run several), removed at exit.
const fs::path& scratch_file() {
  static const fs::path path = [] {
    const fs::path p = fs::temp_directory_path() / ("fuzz_cifar_loader_" + std::to_string(::getpid()) + ".bin");
    std::atexit([] {
      std::error_code ignored;
      fs::remove(scratch_file(), ignored);
    });
    return p;
  }();
  return path;
}

void write_file(const fs::path& path, const uint8_t* data, size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();  // the harness itself failed; not a finding in the reader
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
}

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "fuzz_cifar_loader: unexpected exception (not cifar::Error): %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fs::path& file = scratch_file();
  write_file(file, data, size);
  try {
    const cifar::CifarSet set = cifar::load_cifar_files({file});
    // A loaded set is consistent: one label in 0..9 and 3,072 pixels per record.
    if (set.size() == 0 || set.size() * cifar::kRecordBytes != size || set.images.size() != set.size())
      finding("loaded set does not match the file size");
    for (const int32_t label : set.labels)
      if (label < 0 || label >= static_cast<int32_t>(cifar::kNumClasses)) finding("label outside 0-9 was accepted");
    // First, last and middle record (repeats allowed), then one past the end, which must throw.
    const std::vector<size_t> indices{0, set.size() - 1, set.size() / 2};
    std::vector<float> images(indices.size() * cifar::kImageBytes);
    std::vector<int32_t> labels(indices.size());
    cifar::gather_batch(set, indices, images.data(), labels.data());
    for (const float x : images)
      if (!(x >= -1.0f && x <= 1.0f)) finding("normalised pixel outside [-1, 1]");
    const std::vector<size_t> past_end{set.size()};
    bool threw = false;
    try {
      cifar::gather_batch(set, past_end, images.data(), labels.data());
    } catch (const cifar::Error&) {
      threw = true;
    }
    if (!threw) finding("gather_batch accepted an index past the end");
  } catch (const cifar::Error&) {
    // Expected for a malformed file: empty, truncated, bad label.
  } catch (const std::exception& e) {
    finding(e.what());
  }
  return 0;
}
