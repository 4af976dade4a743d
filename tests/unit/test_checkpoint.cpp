// Checkpoint files: round trip of weights, momentum and position; refusal of a checkpoint from
// another configuration (naming the key), another format, or a truncated file; atomic writes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <limits>

#include "cifar_mpi/app/checkpoint.hpp"
#include "cifar_mpi/util/error.hpp"
#include "cifar_mpi/util/hdf5_file.hpp"
#include "engine_fixture.hpp"
#include "test_util.hpp"

namespace cifar {
namespace {

namespace fs = std::filesystem;

fs::path temp_file(const std::string& name) {
  return fs::temp_directory_path() / ("cifar_mpi_ckpt_" + std::to_string(::getpid()) + "_" + name);
}

using testing::error_of;

TEST(Checkpoint, RoundTripIsBitwise) {
  const auto path = temp_file("roundtrip.h5");
  ParamArena a = testing::make_arena(1);
  std::vector<float> momentum(a.total_count());
  for (size_t i = 0; i < momentum.size(); ++i) momentum[i] = 0.001f * static_cast<float>(i % 977);
  Config cfg;
  const auto id = resume_identity(cfg, 2);
  save_checkpoint(path, a, momentum, {3, 17, 1234}, id);

  ParamArena b = testing::make_arena(2);
  std::vector<float> loaded(b.total_count(), -1.0f);
  const CheckpointPosition pos = load_checkpoint(path, b, loaded, id);
  EXPECT_EQ(pos.epoch, 3);
  EXPECT_EQ(pos.step, 17u);
  EXPECT_EQ(pos.global_step, 1234u);
  EXPECT_EQ(0, std::memcmp(a.params().data(), b.params().data(), a.total_count() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(momentum.data(), loaded.data(), momentum.size() * sizeof(float)));
  for (const auto& entry : fs::directory_iterator(path.parent_path()))
    EXPECT_EQ(entry.path().string().find(path.filename().string() + ".tmp"), std::string::npos);
  fs::remove(path);
}

TEST(Checkpoint, IncompatibleConfigurationIsRefusedWithTheReason) {
  const auto path = temp_file("incompatible.h5");
  ParamArena a = testing::make_arena(1);
  std::vector<float> momentum(a.total_count());
  Config cfg;
  save_checkpoint(path, a, momentum, {0, 1, 1}, resume_identity(cfg, 2));
  const std::string other_n = error_of([&] { load_checkpoint(path, a, momentum, resume_identity(cfg, 4)); });
  EXPECT_NE(other_n.find("world_size = 2"), std::string::npos) << other_n;
  EXPECT_NE(other_n.find("world_size = 4"), std::string::npos) << other_n;
  Config lr = cfg;
  lr.lr = 0.05f;
  const std::string other_lr = error_of([&] { load_checkpoint(path, a, momentum, resume_identity(lr, 2)); });
  EXPECT_NE(other_lr.find("lr = 0.01"), std::string::npos) << other_lr;
  EXPECT_NE(other_lr.find(path.string()), std::string::npos) << other_lr;
  fs::remove(path);
}

// The switch is --shuffle / --no-shuffle now, but checkpoints keep the key they were always written
// with, config.no_shuffle = 1|0 (so those written before the dialect resume): a --no-shuffle
// checkpoint resumes with --no-shuffle, and a shuffled run refuses it naming the key.
TEST(Checkpoint, NoShuffleCheckpointsFromBeforeTheDialectResume) {
  const auto path = temp_file("no_shuffle.h5");
  ParamArena a = testing::make_arena(1);
  std::vector<float> momentum(a.total_count());
  Config in_order;
  in_order.shuffle = false;
  auto old_identity = resume_identity(in_order, 1);
  const auto key = std::find_if(old_identity.begin(), old_identity.end(),
                                [](const auto& kv) { return kv.first == "no_shuffle"; });
  ASSERT_NE(key, old_identity.end());
  EXPECT_EQ(key->second, "1");
  save_checkpoint(path, a, momentum, {0, 1, 1}, old_identity);
  EXPECT_EQ(error_of([&] { load_checkpoint(path, a, momentum, resume_identity(in_order, 1)); }), "");
  const std::string shuffled = error_of([&] { load_checkpoint(path, a, momentum, resume_identity(Config{}, 1)); });
  EXPECT_NE(shuffled.find("no_shuffle = 1, this run has no_shuffle = 0"), std::string::npos) << shuffled;
  fs::remove(path);
}

// ring_layout records the ring that ran (hierarchical or flat); checkpoints written before the key
// existed ran the flat ring and still resume a flat run, and are refused by a hierarchical one.
TEST(Checkpoint, RingLayoutIsCheckedAndOldCheckpointsReadAsFlat) {
  const auto path = temp_file("layout.h5");
  ParamArena a = testing::make_arena(1);
  std::vector<float> momentum(a.total_count());
  Config cfg;
  cfg.allreduce = AllreduceStrategy::ring;
  save_checkpoint(path, a, momentum, {0, 1, 1}, resume_identity(cfg, 4, /*hierarchical_ring=*/true));
  const std::string flat_run = error_of([&] { load_checkpoint(path, a, momentum, resume_identity(cfg, 4)); });
  EXPECT_NE(flat_run.find("ring_layout = hierarchical, this run has ring_layout = flat"), std::string::npos)
      << flat_run;
  EXPECT_EQ(error_of([&] { load_checkpoint(path, a, momentum, resume_identity(cfg, 4, true)); }), "");
  {  // a checkpoint from before the key: remove it
    H5Handle f(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
    ASSERT_GE(f.get(), 0);
    ASSERT_GE(H5Adelete(f, "config.ring_layout"), 0);
  }
  EXPECT_EQ(error_of([&] { load_checkpoint(path, a, momentum, resume_identity(cfg, 4)); }), "");
  const std::string hier_run = error_of([&] { load_checkpoint(path, a, momentum, resume_identity(cfg, 4, true)); });
  EXPECT_NE(hier_run.find("ring_layout = flat, this run has ring_layout = hierarchical"), std::string::npos)
      << hier_run;
  fs::remove(path);
}

// --global-batch: the identity holds the global batch, not the world size, per-rank batch, threads or
// all-reduce; a per-rank checkpoint (or one from before the key) resumes elastically with its
// N x B, and the refusals name --global-batch.
TEST(Checkpoint, GlobalBatchResumesOnAnotherNumberOfRanks) {
  const auto path = temp_file("elastic.h5");
  ParamArena a = testing::make_arena(1);
  std::vector<float> momentum(a.total_count());
  Config elastic;
  elastic.global_batch = 64;
  save_checkpoint(path, a, momentum, {0, 5, 5}, resume_identity(elastic, 2));
  Config other = elastic;
  other.threads = 2;
  other.allreduce = AllreduceStrategy::ring;
  EXPECT_EQ(error_of([&] { load_checkpoint(path, a, momentum, resume_identity(other, 4)); }), "");
  EXPECT_EQ(error_of([&] { load_checkpoint(path, a, momentum, resume_identity(other, 1)); }), "");
  Config per_rank;
  per_rank.batch_size = 16;
  const std::string refused = error_of([&] { load_checkpoint(path, a, momentum, resume_identity(per_rank, 4)); });
  EXPECT_NE(refused.find("resume it with --global-batch 64"), std::string::npos) << refused;

  per_rank.batch_size = 32;  // a per-rank checkpoint, N = 2
  save_checkpoint(path, a, momentum, {0, 5, 5}, resume_identity(per_rank, 2));
  EXPECT_EQ(error_of([&] { load_checkpoint(path, a, momentum, resume_identity(elastic, 4)); }), "");
  per_rank.batch_size = 16;
  const std::string other_n = error_of([&] { load_checkpoint(path, a, momentum, resume_identity(per_rank, 4)); });
  EXPECT_NE(other_n.find("with --global-batch 64 it resumes on any number of ranks"), std::string::npos) << other_n;
  {  // a checkpoint from before the key: its global batch is world_size x batch_size
    H5Handle f(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
    ASSERT_GE(f.get(), 0);
    ASSERT_GE(H5Adelete(f, "config.global_batch"), 0);
  }
  EXPECT_EQ(error_of([&] { load_checkpoint(path, a, momentum, resume_identity(elastic, 1)); }), "");
  elastic.global_batch = 128;
  const std::string other_g = error_of([&] { load_checkpoint(path, a, momentum, resume_identity(elastic, 4)); });
  EXPECT_NE(other_g.find("global_batch = 64, this run has global_batch = 128"), std::string::npos) << other_g;
  fs::remove(path);
}

TEST(Checkpoint, WeightsFileTruncatedFileAndMissingFileAreRefused) {
  ParamArena a = testing::make_arena(1);
  std::vector<float> momentum(a.total_count());
  const auto id = resume_identity(Config{}, 1);
  const auto weights = temp_file("weights.h5");  // a weights file is not a checkpoint
  {
    std::ofstream(weights.string()) << "not hdf5";
  }
  EXPECT_NE(error_of([&] { load_checkpoint(weights, a, momentum, id); }).find("not a readable HDF5"), std::string::npos);
  const auto good = temp_file("good.h5"), cut = temp_file("cut.h5");
  save_checkpoint(good, a, momentum, {0, 1, 1}, id);
  fs::copy_file(good, cut, fs::copy_options::overwrite_existing);
  fs::resize_file(cut, fs::file_size(good) / 2);
  const std::string truncated = error_of([&] { load_checkpoint(cut, a, momentum, id); });
  EXPECT_FALSE(truncated.empty());
  EXPECT_NE(truncated.find(cut.string()), std::string::npos) << truncated;
  EXPECT_NE(error_of([&] { load_checkpoint(temp_file("missing.h5"), a, momentum, id); }).find("not found"),
            std::string::npos);
  fs::remove(weights);
  fs::remove(good);
  fs::remove(cut);
}

TEST(Checkpoint, NonFiniteValuesAreNeitherSavedNorLoaded) {
  const auto path = temp_file("nonfinite.h5");
  ParamArena a = testing::make_arena(1);
  std::vector<float> momentum(a.total_count());
  const auto id = resume_identity(Config{}, 1);
  const size_t at = a.spec("conv2.bias").offset + 5;
  momentum[at] = std::numeric_limits<float>::infinity();
  const std::string saving = error_of([&] { save_checkpoint(path, a, momentum, {0, 1, 1}, id); });
  EXPECT_NE(saving.find("momentum of conv2.bias are not finite"), std::string::npos) << saving;
  EXPECT_FALSE(fs::exists(path));
  // A file that holds one anyway (written by something else) is refused on loading.
  momentum[at] = 0;
  save_checkpoint(path, a, momentum, {0, 1, 1}, id);
  {
    H5Handle f(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
    ASSERT_GE(f.get(), 0);
    H5Handle ds(H5Dopen2(f, "weights/fc2.bias", H5P_DEFAULT), H5Dclose);
    std::vector<float> b(10, 0.0f);
    b[7] = std::numeric_limits<float>::quiet_NaN();
    ASSERT_GE(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, b.data()), 0);
  }
  const std::string loading = error_of([&] { load_checkpoint(path, a, momentum, id); });
  EXPECT_NE(loading.find(path.string() + ": dataset 'weights/fc2.bias' holds a non-finite value (nan) at element 7"),
            std::string::npos)
      << loading;
  fs::remove(path);
}

TEST(Checkpoint, SavingIntoMissingDirectoryFailsAndLeavesNothing) {
  ParamArena a = testing::make_arena(1);
  std::vector<float> momentum(a.total_count());
  const auto dir = temp_file("nodir");
  const std::string e =
      error_of([&] { save_checkpoint(dir / "c.h5", a, momentum, {0, 0, 0}, resume_identity(Config{}, 1)); });
  EXPECT_NE(e.find("cannot write checkpoint"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(dir));
}

}  // namespace
}  // namespace cifar
