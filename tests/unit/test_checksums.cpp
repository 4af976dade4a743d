// Checkpoints and weights files that know they are damaged: every float dataset carries HDF5's
// Fletcher-32 checksum, so one changed byte anywhere in a tensor's data (two bytes, a flipped
// exponent bit) is refused on load with a message naming the file and the dataset. Files written
// before checksums existed (no filter) still load.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "cifar_mpi/app/checkpoint.hpp"
#include "cifar_mpi/model/weights_io.hpp"
#include "cifar_mpi/util/error.hpp"
#include "cifar_mpi/util/hdf5_file.hpp"
#include "engine_fixture.hpp"
#include "scratch_dir.hpp"
#include "test_util.hpp"

namespace cifar {
namespace {

namespace fs = std::filesystem;

using testing::error_of;

// Byte offset of a dataset's (single) chunk in the file, and its size.
std::pair<haddr_t, hsize_t> chunk_of(const fs::path& file, const std::string& dataset) {
  H5Handle f = h5_open_read(file);
  H5Handle ds(H5Dopen2(f, dataset.c_str(), H5P_DEFAULT), H5Dclose);
  EXPECT_TRUE(has_checksum(ds)) << dataset << " has no checksum";
  H5Handle space(H5Dget_space(ds), H5Sclose);
  hsize_t n = 0;
  EXPECT_GE(H5Dget_num_chunks(ds, space, &n), 0);
  EXPECT_EQ(n, 1u);
  hsize_t offset[4] = {};
  unsigned mask = 0;
  haddr_t addr = 0;
  hsize_t size = 0;
  EXPECT_GE(H5Dget_chunk_info(ds, space, 0, offset, &mask, &addr, &size), 0);
  return {addr, size};
}

void change_bytes(const fs::path& file, haddr_t at, std::initializer_list<uint8_t> xors) {
  std::fstream io(file, std::ios::in | std::ios::out | std::ios::binary);
  for (uint8_t x : xors) {
    io.seekg(static_cast<std::streamoff>(at));
    char c = 0;
    io.read(&c, 1);
    c = static_cast<char>(static_cast<uint8_t>(c) ^ x);
    io.seekp(static_cast<std::streamoff>(at));
    io.write(&c, 1);
    ++at;
  }
}

TEST(Checksums, TwoChangedBytesInACheckpointTensorAreRefusedNamingFileAndDataset) {
  testing::ScratchDir dir;
  const fs::path path = dir.path() / "ckpt.h5";
  ParamArena a = testing::make_arena(1);
  std::vector<float> momentum(a.total_count(), 0.5f);
  Config cfg;
  const auto id = resume_identity(cfg, 2);
  save_checkpoint(path, a, momentum, {0, 3, 3}, id);
  {  // intact: loads
    ParamArena b = testing::make_arena(2);
    std::vector<float> v(b.total_count());
    EXPECT_NO_THROW(load_checkpoint(path, b, v, id));
  }
  const auto [addr, size] = chunk_of(path, "weights/fc1.weight");
  ASSERT_GT(size, 1000u);
  change_bytes(path, addr + size / 2, {0x01, 0x10});  // two bytes in the middle of the tensor
  ParamArena b = testing::make_arena(2);
  std::vector<float> v(b.total_count());
  const std::string err = error_of([&] { load_checkpoint(path, b, v, id); });
  EXPECT_NE(err.find(path.string()), std::string::npos) << err;
  EXPECT_NE(err.find("weights/fc1.weight"), std::string::npos) << err;
  EXPECT_NE(err.find("checksum"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
}

TEST(Checksums, AFlippedExponentBitInAWeightsFileIsRefused) {
  testing::ScratchDir dir;
  const fs::path path = dir.path() / "w.h5";
  const ParamArena a = testing::make_arena(1);
  save_weights(a, path);
  const auto [addr, size] = chunk_of(path, "conv2.bias");
  ASSERT_EQ(size, 64u * 4u + 4u);  // the data, then its 4-byte checksum
  // Element 5's most significant byte (little-endian float) holds the sign and the exponent's top
  // 7 bits: flipping bit 5 (0x20) changes the exponent but keeps the value finite, which the
  // finiteness check alone would not see.
  change_bytes(path, addr + 5 * 4 + 3, {0x20});
  ParamArena b = testing::make_arena(2);
  const std::string err = error_of([&] { load_weights(b, path); });
  EXPECT_NE(err.find(path.string()), std::string::npos) << err;
  EXPECT_NE(err.find("conv2.bias"), std::string::npos) << err;
  EXPECT_NE(err.find("checksum"), std::string::npos) << err;
}

TEST(Checksums, FilesWithoutChecksumsStillLoad) {
  testing::ScratchDir dir;
  const fs::path path = dir.path() / "old.h5";
  const ParamArena a = testing::make_arena(1);
  {  // the pre-checksum layout: contiguous datasets, no filter
    H5Handle f = h5_create(path);
    for (const auto& s : a.specs()) {
      std::vector<hsize_t> dims(s.shape.begin(), s.shape.end());
      H5Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
      H5Handle ds(H5Dcreate2(f, s.name.c_str(), H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                  H5Dclose);
      ASSERT_GE(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, a.params().data() + s.offset), 0);
      EXPECT_FALSE(has_checksum(ds));
    }
  }
  ParamArena b = testing::make_arena(2);
  load_weights(b, path);
  EXPECT_EQ(0, std::memcmp(a.params().data(), b.params().data(), a.total_count() * sizeof(float)));
}

}  // namespace
}  // namespace cifar
