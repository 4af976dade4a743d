// The CIFAR-10 reader on small hand-written files (layout, concatenation, normalisation and every
// validation error), plus a check of the real data set when it has been unpacked.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <optional>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "scratch_dir.hpp"
#include "cifar_mpi/data/cifar_dataset.hpp"
#include "cifar_mpi/util/error.hpp"

namespace cifar {
namespace {

namespace fs = std::filesystem;

using testing::ScratchDir;

// A pixel value that differs by record, channel and position, so any mix-up shows.
uint8_t pattern_pixel(size_t record, size_t offset) { return static_cast<uint8_t>((record * 37 + offset * 11 + offset / 1024) % 256); }

struct Record {
  uint8_t label;
  std::array<uint8_t, kImageBytes> pixels;
};

Record pattern_record(uint8_t label, size_t seed) {
  Record record{label, {}};
  for (size_t p = 0; p < kImageBytes; ++p) record.pixels[p] = pattern_pixel(seed, p);
  return record;
}

void write_bytes(const fs::path& file, const std::vector<uint8_t>& bytes) {
  std::ofstream out(file, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << file;
}

void write_records(const fs::path& file, const std::vector<Record>& records) {
  std::vector<uint8_t> bytes;
  for (const Record& record : records) {
    bytes.push_back(record.label);
    bytes.insert(bytes.end(), record.pixels.begin(), record.pixels.end());
  }
  write_bytes(file, bytes);
}

// Runs `load`, which must throw cifar::Error with a one-line message containing every fragment.
void expect_error_containing(const std::function<void()>& load, const std::vector<std::string>& fragments) {
  EXPECT_THROW(
      {
        try {
          load();
        } catch (const Error& error) {
          const std::string message = error.what();
          for (const std::string& fragment : fragments)
            EXPECT_NE(message.find(fragment), std::string::npos) << "'" << fragment << "' missing from: " << message;
          EXPECT_EQ(message.find('\n'), std::string::npos) << "message spans lines: " << message;
          throw;
        }
      },
      Error);
}

TEST(CifarDataset, LoadsTwoFilesInOrderKeepingLabelsAndChannelMajorPixels) {
  ScratchDir dir;
  const std::vector<Record> first{pattern_record(3, 0), pattern_record(9, 1)};
  const std::vector<Record> second{pattern_record(0, 2), pattern_record(5, 3), pattern_record(7, 4)};
  write_records(dir.path() / "a.bin", first);
  write_records(dir.path() / "b.bin", second);

  const CifarSet set = load_cifar_files({dir.path() / "a.bin", dir.path() / "b.bin"});

  ASSERT_EQ(set.size(), 5u);
  ASSERT_EQ(set.images.size(), 5u);
  EXPECT_EQ(set.labels, (std::vector<int32_t>{3, 9, 0, 5, 7}));
  for (size_t record = 0; record < 5; ++record)
    for (size_t p = 0; p < kImageBytes; ++p)
      ASSERT_EQ(set.image(record)[p], pattern_pixel(record, p)) << "record " << record << " byte " << p;
  // The file's plane order is kept: byte 1024*c + 32*y + x of the image is channel c, row y, column x.
  const size_t green_row2_col5 = 1 * 1024 + 2 * 32 + 5;
  EXPECT_EQ(set.image(3)[green_row2_col5], second[1].pixels[green_row2_col5]);
}

// The images are the mapped files' bytes: a copy of the set keeps them, and so does a set whose
// files were removed after loading (the mapping holds the file).
TEST(CifarDataset, ACopyOfTheSetKeepsItsImagesWhenTheOriginalAndTheFilesAreGone) {
  ScratchDir dir;
  write_records(dir.path() / "a.bin", {pattern_record(6, 0), pattern_record(2, 1)});
  std::optional<CifarSet> original = load_cifar_files({dir.path() / "a.bin"});
  const CifarSet copy = *original;
  original.reset();
  fs::remove(dir.path() / "a.bin");
  ASSERT_EQ(copy.size(), 2u);
  EXPECT_EQ(copy.labels, (std::vector<int32_t>{6, 2}));
  for (size_t record = 0; record < 2; ++record)
    for (size_t p = 0; p < kImageBytes; ++p)
      ASSERT_EQ(copy.image(record)[p], pattern_pixel(record, p)) << "record " << record << " byte " << p;
}

TEST(CifarDataset, MakeCifarSetHoldsPixelsInMemoryAndRefusesAMismatch) {
  std::vector<uint8_t> pixels(2 * kImageBytes);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i % 251);
  const CifarSet set = make_cifar_set(pixels, {1, 7});
  ASSERT_EQ(set.size(), 2u);
  EXPECT_EQ(set.image(1)[5], pixels[kImageBytes + 5]);
  expect_error_containing([&] { make_cifar_set(std::vector<uint8_t>(kImageBytes + 1), {3}); },
                          {"3073 pixel bytes", "1 labels"});
}

TEST(CifarDataset, GatherBatchNormalisesLikeTorchvisionInIndexOrder) {
  ScratchDir dir;
  Record extremes{4, {}};
  extremes.pixels[0] = 0;
  extremes.pixels[1] = 255;
  extremes.pixels[2] = 128;
  write_records(dir.path() / "a.bin", {pattern_record(1, 0), extremes, pattern_record(8, 2)});
  const CifarSet set = load_cifar_files({dir.path() / "a.bin"});

  const std::vector<size_t> indices{2, 1, 2, 0};
  std::vector<float> images(indices.size() * kImageBytes);
  std::vector<int32_t> labels(indices.size());
  gather_batch(set, indices, images.data(), labels.data());

  EXPECT_EQ(labels, (std::vector<int32_t>{8, 4, 8, 1}));
  const float* extremes_image = images.data() + 1 * kImageBytes;
  EXPECT_EQ(extremes_image[0], -1.0f);
  EXPECT_EQ(extremes_image[1], 1.0f);
  const float expected_128 = (128.0f / 255.0f - 0.5f) / 0.5f;  // exactly torchvision's float32 steps
  EXPECT_EQ(extremes_image[2], expected_128);
  for (size_t i = 0; i < indices.size(); ++i)
    for (size_t p = 0; p < kImageBytes; ++p) {
      const float byte = set.image(indices[i])[p];
      ASSERT_EQ(images[i * kImageBytes + p], (byte / 255.0f - 0.5f) / 0.5f) << "batch item " << i << " byte " << p;
    }
}

TEST(CifarDataset, GatherBatchRejectsAnIndexOutsideTheSet) {
  ScratchDir dir;
  write_records(dir.path() / "a.bin", {pattern_record(1, 0)});
  const CifarSet set = load_cifar_files({dir.path() / "a.bin"});
  const std::vector<size_t> indices{1};
  std::vector<float> images(kImageBytes);
  int32_t label = 0;
  expect_error_containing([&] { gather_batch(set, indices, images.data(), &label); }, {"index 1", "1 records"});
}

TEST(CifarDataset, MissingDirectoryIsNamedWithTheFix) {
  ScratchDir dir;
  const fs::path missing = dir.path() / "no_such_dir";
  expect_error_containing([&] { load_cifar_train(missing); }, {missing.string(), "directory not found", "get_cifar10.sh"});
  expect_error_containing([&] { load_cifar_test(missing); }, {missing.string(), "directory not found"});
}

TEST(CifarDataset, MissingFileIsNamed) {
  ScratchDir dir;
  expect_error_containing([&] { load_cifar_files({dir.path() / "absent.bin"}); }, {"absent.bin", "not found"});
  // The directory exists but holds no batches: the first batch file is the one named.
  expect_error_containing([&] { load_cifar_train(dir.path()); }, {"data_batch_1.bin", "not found"});
  expect_error_containing([&] { load_cifar_test(dir.path()); }, {"test_batch.bin", "not found"});
}

TEST(CifarDataset, EmptyFileIsNamed) {
  ScratchDir dir;
  write_bytes(dir.path() / "empty.bin", {});
  expect_error_containing([&] { load_cifar_files({dir.path() / "empty.bin"}); }, {"empty.bin", "empty"});
}

TEST(CifarDataset, TruncatedFileGivesItsSize) {
  ScratchDir dir;
  write_records(dir.path() / "good.bin", {pattern_record(1, 0)});
  std::vector<uint8_t> bytes(2 * kRecordBytes + 100, 0);
  write_bytes(dir.path() / "short.bin", bytes);
  expect_error_containing([&] { load_cifar_files({dir.path() / "good.bin", dir.path() / "short.bin"}); },
                          {"short.bin", "truncated", "6246 bytes", "3073"});
}

TEST(CifarDataset, LabelOutsideZeroToNineNamesRecordAndValue) {
  ScratchDir dir;
  for (const uint8_t bad_label : {uint8_t{10}, uint8_t{255}}) {
    const fs::path file = dir.path() / ("label_" + std::to_string(bad_label) + ".bin");
    write_records(file, {pattern_record(0, 0), pattern_record(9, 1), pattern_record(bad_label, 2)});
    expect_error_containing([&] { load_cifar_files({file}); },
                            {file.filename().string(), "record 2", "label " + std::to_string(bad_label)});
  }
}

TEST(CifarDataset, RealDataSetHasTheOfficialSizesAndABalancedTestSet) {
  const fs::path dir = CIFAR_DATA_DIR;
  if (!fs::is_directory(dir)) GTEST_SKIP() << "CIFAR-10 not found at " << dir.string() << "; run tools/get_cifar10.sh";

  const CifarSet train = load_cifar_train(dir);
  EXPECT_EQ(train.size(), 50000u);
  EXPECT_EQ(train.images.size(), 50000u);

  const CifarSet test = load_cifar_test(dir);
  ASSERT_EQ(test.size(), 10000u);
  std::array<int, kNumClasses> per_class{};
  for (const int32_t label : test.labels) ++per_class[static_cast<size_t>(label)];
  for (size_t c = 0; c < kNumClasses; ++c) EXPECT_EQ(per_class[c], 1000) << "class " << c;
}

}  // namespace
}  // namespace cifar
