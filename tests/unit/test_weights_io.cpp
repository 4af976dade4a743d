// save_weights / load_weights: the round trip is bitwise, the file holds PyTorch state_dict names
// and shapes, every bad file is a cifar::Error naming the file (and the tensor), and saving is
// atomic (temporary file + rename; nothing left behind on failure).
#include <gtest/gtest.h>
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "scratch_dir.hpp"
#include "cifar_mpi/model/weights_io.hpp"
#include "cifar_mpi/util/error.hpp"
#include "cifar_mpi/util/hdf5_file.hpp"
#include "engine_fixture.hpp"

namespace cifar {
namespace {

namespace fs = std::filesystem;

using testing::ScratchDir;

// The reference network's state_dict, in PyTorch's order and shapes.
const std::vector<std::pair<std::string, std::vector<size_t>>>& pytorch_tensors() {
  static const std::vector<std::pair<std::string, std::vector<size_t>>> t{
      {"conv1.weight", {32, 3, 3, 3}}, {"conv1.bias", {32}},        {"conv2.weight", {64, 32, 3, 3}},
      {"conv2.bias", {64}},            {"fc1.weight", {128, 2304}}, {"fc1.bias", {128}},
      {"fc2.weight", {10, 128}},       {"fc2.bias", {10}}};
  return t;
}

std::vector<float> params_of(const ParamArena& a) { return {a.params().begin(), a.params().end()}; }

bool bitwise_equal(const ParamArena& a, const ParamArena& b) {
  return a.total_count() == b.total_count() &&
         std::memcmp(a.params().data(), b.params().data(), a.total_count() * sizeof(float)) == 0;
}

std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// Writes the arena's tensors like save_weights does, but lets the test drop one tensor or
// replace its shape.
void write_custom(const ParamArena& a, const fs::path& path, const std::string& skip,
                  const std::string& reshape = "", const std::vector<size_t>& new_shape = {}) {
  H5Handle f = h5_create(path);
  for (const auto& s : a.specs()) {
    if (s.name == skip) continue;
    const auto& shape = s.name == reshape ? new_shape : s.shape;
    h5_write_floats(f, s.name, a.params().data() + s.offset, shape);
  }
}

// Expects load_weights(path) to throw cifar::Error whose one-line what() names every one of
// `needles`; prints the message.
void expect_load_error(const fs::path& path, const std::vector<std::string>& needles) {
  ParamArena a = testing::make_arena(5);
  try {
    load_weights(a, path);
    ADD_FAILURE() << "no error loading " << path;
  } catch (const Error& e) {
    const std::string msg = e.what();
    std::cout << "[  MESSAGE ] " << msg << "\n";
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line: " << msg;
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not named in: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-cifar::Error: " << e.what();
  }
}

TEST(WeightsIoTest, RoundTripIsBitwise) {
  ScratchDir dir;
  const fs::path file = dir.path() / "w.h5";
  const ParamArena a = testing::make_arena(1);
  ParamArena b = testing::make_arena(2);
  ASSERT_FALSE(bitwise_equal(a, b)) << "the two seeds should give different weights";
  save_weights(a, file);
  ASSERT_TRUE(fs::exists(file));
  load_weights(b, file);
  EXPECT_TRUE(bitwise_equal(a, b));
  EXPECT_EQ(params_of(a), params_of(b));
  // Gradients are not part of the file and are left alone.
  for (float g : b.grads()) ASSERT_EQ(g, 0.0f);
  EXPECT_EQ(listing(dir.path()), std::vector<std::string>{"w.h5"});
}

TEST(WeightsIoTest, FileHoldsPyTorchNamesAndShapes) {
  ScratchDir dir;
  const fs::path file = dir.path() / "w.h5";
  const ParamArena a = testing::make_arena(3);
  save_weights(a, file);

  h5_silence_errors();
  H5Handle f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  ASSERT_GE(f.get(), 0);
  H5G_info_t info{};
  ASSERT_GE(H5Gget_info(f, &info), 0);
  EXPECT_EQ(info.nlinks, pytorch_tensors().size()) << "the file should hold exactly the state_dict";
  for (const auto& [name, shape] : pytorch_tensors()) {
    SCOPED_TRACE(name);
    ASSERT_GT(H5Lexists(f, name.c_str(), H5P_DEFAULT), 0) << "missing dataset " << name;
    H5Handle ds(H5Dopen2(f, name.c_str(), H5P_DEFAULT), H5Dclose);
    ASSERT_GE(ds.get(), 0) << name << " is not a dataset";
    EXPECT_EQ(H5Iget_type(ds), H5I_DATASET);
    H5Handle type(H5Dget_type(ds), H5Tclose);
    EXPECT_GT(H5Tequal(type, H5T_IEEE_F32LE), 0) << "should be float32 little-endian";
    H5Handle space(H5Dget_space(ds), H5Sclose);
    const int rank = H5Sget_simple_extent_ndims(space);
    ASSERT_EQ(rank, static_cast<int>(shape.size()));
    std::vector<hsize_t> dims(shape.size());
    H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    EXPECT_EQ(std::vector<size_t>(dims.begin(), dims.end()), shape);
    // The values are the arena's, in PyTorch's row-major layout.
    std::vector<float> values(a.spec(name).count);
    ASSERT_GE(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), 0);
    EXPECT_EQ(values, testing::tensor(a, name, false));
  }
}

TEST(WeightsIoTest, MissingTensorNamesFileAndTensor) {
  ScratchDir dir;
  const fs::path file = dir.path() / "missing.h5";
  write_custom(testing::make_arena(1), file, "fc1.bias");
  expect_load_error(file, {file.string(), "fc1.bias", "missing"});
}

TEST(WeightsIoTest, MisShapedTensorNamesFileTensorAndShapes) {
  ScratchDir dir;
  const fs::path file = dir.path() / "misshaped.h5";
  // Same element count, wrong layout: only a shape check catches it.
  write_custom(testing::make_arena(1), file, "", "conv2.weight", {32, 64, 3, 3});
  expect_load_error(file, {file.string(), "conv2.weight", "[32,64,3,3]", "[64,32,3,3]"});

  const fs::path flat = dir.path() / "flat.h5";
  write_custom(testing::make_arena(1), flat, "", "fc2.weight", {1280});
  expect_load_error(flat, {flat.string(), "fc2.weight", "[1280]", "[10,128]"});

  const fs::path bigger = dir.path() / "bigger.h5";
  write_custom(testing::make_arena(1), bigger, "", "fc2.bias", {11});
  expect_load_error(bigger, {bigger.string(), "fc2.bias", "[11]", "[10]"});
}

TEST(WeightsIoTest, TruncatedFileNamesFile) {
  ScratchDir dir;
  const fs::path good = dir.path() / "good.h5";
  const fs::path cut = dir.path() / "truncated.h5";
  save_weights(testing::make_arena(1), good);
  fs::copy_file(good, cut);
  fs::resize_file(cut, fs::file_size(good) / 2);
  expect_load_error(cut, {cut.string()});
}

TEST(WeightsIoTest, NonHdf5FileNamesFile) {
  ScratchDir dir;
  const fs::path file = dir.path() / "weights.txt";
  std::ofstream(file) << "conv1.weight = [1, 2, 3]\n";
  expect_load_error(file, {file.string()});
  const fs::path empty = dir.path() / "empty.h5";
  std::ofstream{empty};
  expect_load_error(empty, {empty.string()});
}

TEST(WeightsIoTest, NonexistentPathNamesFile) {
  ScratchDir dir;
  const fs::path file = dir.path() / "nope" / "w.h5";
  expect_load_error(file, {file.string(), "not found"});
}

TEST(WeightsIoTest, SaveIntoMissingDirectoryThrowsAndLeavesNothing) {
  ScratchDir dir;
  const fs::path file = dir.path() / "no_such_dir" / "w.h5";
  try {
    save_weights(testing::make_arena(1), file);
    ADD_FAILURE() << "no error saving into a missing directory";
  } catch (const Error& e) {
    const std::string msg = e.what();
    std::cout << "[  MESSAGE ] " << msg << "\n";
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_NE(msg.find(file.string()), std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(file));
  EXPECT_FALSE(fs::exists(file.parent_path())) << "save_weights must not create directories";
  EXPECT_TRUE(listing(dir.path()).empty()) << "left behind: " << listing(dir.path()).front();
}

TEST(WeightsIoTest, ExistingFileIsReplacedAtomically) {
  ScratchDir dir;
  const fs::path file = dir.path() / "w.h5";
  const fs::path old_link = dir.path() / "old.h5";
  const ParamArena first = testing::make_arena(1), second = testing::make_arena(2);
  save_weights(first, file);
  // A second name for the first file's inode: a rename into place leaves it intact, writing the
  // file in place would change it.
  fs::create_hard_link(file, old_link);
  save_weights(second, file);

  ParamArena got = testing::make_arena(9);
  load_weights(got, file);
  EXPECT_TRUE(bitwise_equal(got, second)) << "the file was not replaced";
  load_weights(got, old_link);
  EXPECT_TRUE(bitwise_equal(got, first)) << "the old file was overwritten in place, not replaced by a rename";
  EXPECT_EQ(fs::hard_link_count(file), 1u);
  EXPECT_EQ(listing(dir.path()), (std::vector<std::string>{"old.h5", "w.h5"})) << "a temporary file was left behind";
}

TEST(WeightsIoTest, TempFileIsBesideTheTarget) {
  // The rename is only atomic within one file system: the temporary must be in the same folder.
  const fs::path target = "/some/dir/w.h5";
  const fs::path tmp = temp_path_for(target);
  EXPECT_EQ(tmp.parent_path(), target.parent_path());
  EXPECT_NE(tmp, target);
  EXPECT_EQ(tmp.filename().string().rfind("w.h5.tmp.", 0), 0u) << tmp;
}

}  // namespace
}  // namespace cifar
