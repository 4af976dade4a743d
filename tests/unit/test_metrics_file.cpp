// MetricsFile: the path is checked up front (an existing file needs --force, a missing folder is
// named), the file is written whole and atomically after each epoch (no temporary file left),
// and its datasets have the documented shapes, types and values; read back with the HDF5 C API.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <mpi.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "cifar_mpi/metrics/metrics_file.hpp"
#include "cifar_mpi/util/error.hpp"
#include "cifar_mpi/util/hdf5_file.hpp"
#include "test_util.hpp"

namespace cifar {
namespace {

namespace fs = std::filesystem;

class MetricsScratch {
 public:
  MetricsScratch() {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() / ("cifar_metrics_test_" + std::to_string(::getpid()) + "_" + test->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~MetricsScratch() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

using testing::error_of;

// ---- reading back ----
std::vector<hsize_t> dims_of(hid_t file, const char* name) {
  H5Handle ds(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
  if (ds.get() < 0) return {};
  H5Handle space(H5Dget_space(ds), H5Sclose);
  std::vector<hsize_t> d(static_cast<size_t>(H5Sget_simple_extent_ndims(space)));
  H5Sget_simple_extent_dims(space, d.data(), nullptr);
  return d;
}

template <class T>
std::vector<T> read_all(hid_t file, const char* name, hid_t mem_type) {
  H5Handle ds(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
  EXPECT_GE(ds.get(), 0) << name;
  H5Handle space(H5Dget_space(ds), H5Sclose);
  std::vector<T> v(static_cast<size_t>(H5Sget_simple_extent_npoints(space)));
  if (!v.empty()) EXPECT_GE(H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), 0) << name;
  return v;
}

hid_t file_type_of(hid_t file, const char* name) {
  H5Handle ds(H5Dopen2(file, name, H5P_DEFAULT), H5Dclose);
  return H5Dget_type(ds);  // caller closes
}

double attr_double(hid_t loc, const char* obj, const char* name) {
  double v = NAN;
  H5Handle a(H5Aopen_by_name(loc, obj, name, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  EXPECT_GE(a.get(), 0) << obj << " @" << name;
  if (a.get() >= 0) H5Aread(a, H5T_NATIVE_DOUBLE, &v);
  return v;
}

std::string attr_string(hid_t loc, const char* obj, const char* name) {
  H5Handle a(H5Aopen_by_name(loc, obj, name, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  EXPECT_GE(a.get(), 0) << obj << " @" << name;
  if (a.get() < 0) return "";
  H5Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  char* p = nullptr;
  if (H5Aread(a, type, &p) < 0 || !p) return "";
  std::string s = p;
  H5free_memory(p);
  return s;
}

// ---- a fake run: 2 ranks; record (s, r) has t_comp = s + r / 10 etc. ----
constexpr int kWorld = 2;

RunInfo fake_info() {
  RunInfo info;
  info.strategy = "ring";
  info.config = {{"allreduce", "ring"}, {"bucket_mb", "1.5"}, {"eval", "1"}};
  info.bucket_mb = 1.5;
  info.eval = true;
  info.env.world_size = kWorld;
  info.env.ranks_per_node = kWorld;
  info.env.hosts = "nodeA";
  info.start_time = "2024-01-02T03:04:05+00:00";
  info.parameter_count = 1000;
  info.gradient_bytes = 4000;
  info.batch_per_rank = 8;
  info.steps_per_epoch = 3;
  return info;
}

std::vector<StepRecord> fake_steps(size_t first_step, size_t steps) {
  std::vector<StepRecord> v;
  for (size_t s = first_step; s < first_step + steps; ++s)
    for (int r = 0; r < kWorld; ++r) {
      StepRecord x;
      x.t_data = 0.001 * (s + 1);
      x.t_comp = static_cast<double>(s) + r / 10.0;
      x.t_comm = 0.5 + r;
      x.t_wait = 0.25 * (r + 1);
      x.t_update = 0.002;
      x.loss = 2.0 - 0.1 * static_cast<double>(s);
      x.comm_calls = 3;
      x.comm_bytes = 4000 + static_cast<uint64_t>(r);
      x.last_rank = 1;  // rank 1 arrived last: rank 0 waited for it, rank 1 for itself
      x.skew = r == 0 ? 0.01 * static_cast<double>(s + 1) : 0;
      v.push_back(x);
    }
  return v;
}

EpochRecord fake_epoch(int epoch, size_t steps, double wall) {
  EpochRecord e;
  e.epoch = epoch;
  e.steps = steps;
  e.train_loss = 1.5;
  e.test_loss = 1.25;
  e.test_accuracy = 0.5 + 0.1 * epoch;
  e.wall = wall;
  e.images = steps * 8 * kWorld;
  return e;
}

bool only_file_in(const fs::path& dir, const fs::path& file) {
  size_t n = 0;
  bool found = false;
  for (const auto& e : fs::directory_iterator(dir)) {
    ++n;
    found |= e.path() == file;
  }
  return n == 1 && found;
}

TEST(MetricsFile, RefusesAnExistingFileWithoutForce) {
  MetricsScratch dir;
  const fs::path p = dir.path() / "m.h5";
  std::ofstream(p) << "old";
  const std::string err = error_of([&] { MetricsFile m(p, false); });
  EXPECT_NE(err.find(p.string()), std::string::npos) << err;
  EXPECT_NE(err.find("--force"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  EXPECT_EQ(error_of([&] { MetricsFile m(p, true); }), "");
  // The old file stays until the first epoch's file replaces it.
  std::ifstream in(p);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "old");
}

TEST(MetricsFile, MissingFolderIsAnErrorNamingIt) {
  MetricsScratch dir;
  const fs::path missing = dir.path() / "no_such_folder";
  const std::string err = error_of([&] { MetricsFile m(missing / "m.h5", true); });
  EXPECT_NE(err.find(missing.string()), std::string::npos) << err;
  EXPECT_NE(err.find("does not exist"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(missing));
  const std::string err2 = error_of([&] { MetricsFile m(dir.path(), true); });  // a folder, not a file
  EXPECT_NE(err2.find("is a folder"), std::string::npos) << err2;
}

TEST(MetricsFile, WritesTheDocumentedLayoutAndNoTemporaryFile) {
  MetricsScratch dir;
  const fs::path p = dir.path() / "m.h5";
  MetricsFile m(p, false);
  m.set_run_info(fake_info());
  m.add_epoch(fake_epoch(1, 3, 2.0), fake_steps(0, 3));
  m.write();
  ASSERT_TRUE(fs::exists(p));
  EXPECT_TRUE(only_file_in(dir.path(), p)) << "a temporary file was left behind";

  H5Handle f = h5_open_read(p);
  const std::vector<hsize_t> two_d{3, kWorld};
  for (const char* name : {"steps/t_data", "steps/t_comp", "steps/t_comm", "steps/t_wait", "steps/t_update",
                           "steps/loss", "steps/comm_calls", "steps/comm_bytes", "steps/t_progress",
                           "steps/overlapped"})
    EXPECT_EQ(dims_of(f, name), two_d) << name;
  EXPECT_EQ(dims_of(f, "steps/epoch"), std::vector<hsize_t>{3});
  for (const char* name : {"epochs/epoch", "epochs/steps", "epochs/train_loss", "epochs/test_loss",
                           "epochs/test_accuracy", "epochs/wall", "epochs/images"})
    EXPECT_EQ(dims_of(f, name), std::vector<hsize_t>{1}) << name;

  // Types as documented.
  const std::pair<const char*, hid_t> types[] = {{"steps/t_comp", H5T_IEEE_F64LE},
                                                 {"steps/comm_calls", H5T_STD_U32LE},
                                                 {"steps/comm_bytes", H5T_STD_U64LE},
                                                 {"steps/epoch", H5T_STD_I32LE}};
  for (const auto& [name, want] : types) {
    H5Handle t(file_type_of(f, name), H5Tclose);
    EXPECT_GT(H5Tequal(t, want), 0) << name;
  }

  // Values: [step][rank] row-major.
  const auto comp = read_all<double>(f, "steps/t_comp", H5T_NATIVE_DOUBLE);
  ASSERT_EQ(comp.size(), 6u);
  for (size_t s = 0; s < 3; ++s)
    for (int r = 0; r < kWorld; ++r) EXPECT_DOUBLE_EQ(comp[s * kWorld + r], s + r / 10.0);
  const auto bytes = read_all<uint64_t>(f, "steps/comm_bytes", H5T_NATIVE_UINT64);
  EXPECT_EQ(bytes, (std::vector<uint64_t>{4000, 4001, 4000, 4001, 4000, 4001}));
  EXPECT_EQ(read_all<uint32_t>(f, "steps/comm_calls", H5T_NATIVE_UINT32), std::vector<uint32_t>(6, 3));
  EXPECT_EQ(read_all<int32_t>(f, "steps/epoch", H5T_NATIVE_INT32), (std::vector<int32_t>{1, 1, 1}));
  // Who was late at each step's first reduction (StallWatch::arrive).
  EXPECT_EQ(dims_of(f, "steps/last_rank"), two_d);
  EXPECT_EQ(dims_of(f, "steps/skew"), two_d);
  {
    H5Handle t(file_type_of(f, "steps/last_rank"), H5Tclose);
    EXPECT_GT(H5Tequal(t, H5T_STD_I32LE), 0);
  }
  EXPECT_EQ(read_all<int32_t>(f, "steps/last_rank", H5T_NATIVE_INT32), std::vector<int32_t>(6, 1));
  const auto skew = read_all<double>(f, "steps/skew", H5T_NATIVE_DOUBLE);
  ASSERT_EQ(skew.size(), 6u);
  for (size_t st = 0; st < 3; ++st) {
    EXPECT_DOUBLE_EQ(skew[st * kWorld + 0], 0.01 * static_cast<double>(st + 1));
    EXPECT_DOUBLE_EQ(skew[st * kWorld + 1], 0);
  }
  EXPECT_EQ(attr_string(f, "steps/skew", "units"), "s");
  EXPECT_FALSE(attr_string(f, "steps/last_rank", "description").empty());
  EXPECT_EQ(read_all<double>(f, "epochs/test_accuracy", H5T_NATIVE_DOUBLE), std::vector<double>{0.6});
  EXPECT_EQ(read_all<double>(f, "epochs/wall", H5T_NATIVE_DOUBLE), std::vector<double>{2.0});
  EXPECT_EQ(attr_string(f, "steps/t_comp", "units"), "s");
  EXPECT_FALSE(attr_string(f, "steps/t_wait", "description").empty());

  // Root attributes.
  EXPECT_EQ(attr_double(f, ".", "world_size"), kWorld);
  EXPECT_EQ(attr_double(f, ".", "complete"), 0);
  EXPECT_EQ(attr_double(f, ".", "parameter_count"), 1000);
  EXPECT_EQ(attr_double(f, ".", "gradient_bytes"), 4000);
  EXPECT_EQ(attr_double(f, ".", "bucket_mb"), 1.5);
  EXPECT_EQ(attr_string(f, ".", "strategy"), "ring");
  EXPECT_EQ(attr_string(f, ".", "hosts"), "nodeA");
  EXPECT_EQ(attr_string(f, ".", "config.allreduce"), "ring");
  EXPECT_EQ(attr_string(f, ".", "start_time"), "2024-01-02T03:04:05+00:00");
  for (const char* v : {"version_onednn", "version_mpi", "version_hdf5", "version_compiler", "git_commit"})
    EXPECT_FALSE(attr_string(f, ".", v).empty()) << v;

  // Summary: per-rank totals averaged over the ranks.
  EXPECT_DOUBLE_EQ(attr_double(f, "summary", "total_train_time"), 2.0);
  EXPECT_DOUBLE_EQ(attr_double(f, "summary", "total_comm_time"), 3 * (0.5 + 1.5) / 2);   // ranks: 1.5 and 4.5
  EXPECT_DOUBLE_EQ(attr_double(f, "summary", "total_comm_time_max"), 4.5);
  EXPECT_DOUBLE_EQ(attr_double(f, "summary", "total_wait_time"), 3 * (0.25 + 0.5) / 2);
  EXPECT_DOUBLE_EQ(attr_double(f, "summary", "total_comp_time"), (3.0 + 3.3) / 2);      // 0+1+2, 0.1+1.1+2.1
  EXPECT_DOUBLE_EQ(attr_double(f, "summary", "comm_calls_per_epoch"), 9);
  EXPECT_DOUBLE_EQ(attr_double(f, "summary", "avg_iteration_time"), 2.0 / 3);
  EXPECT_DOUBLE_EQ(attr_double(f, "summary", "images_per_second"), 48 / 2.0);
  EXPECT_DOUBLE_EQ(attr_double(f, "summary", "compute_to_comm_ratio"), 3.15 / 3.0);
  EXPECT_DOUBLE_EQ(attr_double(f, "summary", "final_test_accuracy"), 0.6);
  for (const char* a : {"overlap_step", "overlap_no_overlap_step", "overlap_hidden", "overlap_realised",
                        "overlap_comp_inflation", "overlap_reference_steps"})
    attr_double(f, "summary", a);  // fails if missing
}

TEST(MetricsFile, EachEpochRewritesTheWholeFileLonger) {
  MetricsScratch dir;
  const fs::path p = dir.path() / "m.h5";
  MetricsFile m(p, false);
  m.set_run_info(fake_info());
  m.add_epoch(fake_epoch(1, 3, 2.0), fake_steps(0, 3));
  m.write();
  m.add_epoch(fake_epoch(2, 2, 1.0), fake_steps(3, 2));
  m.write();
  {
    H5Handle f = h5_open_read(p);
    EXPECT_EQ(dims_of(f, "steps/t_comp"), (std::vector<hsize_t>{5, kWorld}));
    EXPECT_EQ(read_all<int32_t>(f, "steps/epoch", H5T_NATIVE_INT32), (std::vector<int32_t>{1, 1, 1, 2, 2}));
    EXPECT_EQ(read_all<int32_t>(f, "epochs/epoch", H5T_NATIVE_INT32), (std::vector<int32_t>{1, 2}));
    EXPECT_EQ(read_all<int64_t>(f, "epochs/steps", H5T_NATIVE_INT64), (std::vector<int64_t>{3, 2}));
    const auto comp = read_all<double>(f, "steps/t_comp", H5T_NATIVE_DOUBLE);
    EXPECT_DOUBLE_EQ(comp[4 * kWorld + 1], 4.1);
    EXPECT_DOUBLE_EQ(attr_double(f, "summary", "total_train_time"), 3.0);
    EXPECT_DOUBLE_EQ(attr_double(f, "summary", "comm_calls_per_epoch"), 7.5);  // 15 calls / 2 epochs
    EXPECT_EQ(attr_double(f, ".", "complete"), 0);
  }
  m.set_complete(3.5);
  m.write();
  H5Handle f = h5_open_read(p);
  EXPECT_EQ(attr_double(f, ".", "complete"), 1);
  EXPECT_DOUBLE_EQ(attr_double(f, "summary", "total_wall"), 3.5);
  EXPECT_TRUE(only_file_in(dir.path(), p));
}

TEST(MetricsFile, EpochWithTheWrongNumberOfRecordsIsRefused) {
  MetricsScratch dir;
  MetricsFile m(dir.path() / "m.h5", false);
  m.set_run_info(fake_info());
  const std::string err = error_of([&] { m.add_epoch(fake_epoch(1, 3, 1.0), fake_steps(0, 2)); });
  EXPECT_NE(err.find("expected 3 steps x 2 ranks"), std::string::npos) << err;
}

TEST(MetricsFile, NoCommunicationAndNoEvalAreNaN) {
  MetricsScratch dir;
  MetricsFile m(dir.path() / "m.h5", false);
  RunInfo info = fake_info();
  info.env.world_size = 1;
  info.eval = false;
  m.set_run_info(info);
  std::vector<StepRecord> steps(2);
  m.add_epoch(fake_epoch(1, 2, 1.0), steps);
  m.write();
  H5Handle f = h5_open_read(dir.path() / "m.h5");
  EXPECT_TRUE(std::isnan(attr_double(f, "summary", "compute_to_comm_ratio")));
  EXPECT_TRUE(std::isnan(attr_double(f, "summary", "final_test_accuracy")));
  EXPECT_TRUE(std::isnan(read_all<double>(f, "epochs/test_accuracy", H5T_NATIVE_DOUBLE).at(0)));
}

TEST(MetricsFile, DefaultPathIsUnderResultsAndNeverTaken) {
  MetricsScratch dir;
  const fs::path old_cwd = fs::current_path();
  fs::current_path(dir.path());
  const fs::path a = default_metrics_path(3);
  std::ofstream(a) << "x";
  const fs::path b = default_metrics_path(3);
  fs::current_path(old_cwd);
  EXPECT_TRUE(fs::is_directory(dir.path() / "results"));
  EXPECT_EQ(a.parent_path(), "results");
  EXPECT_EQ(a.filename().string().rfind("run-", 0), 0u) << a;
  EXPECT_NE(a.filename().string().find("-np3"), std::string::npos) << a;
  EXPECT_EQ(a.extension(), ".h5");
  EXPECT_NE(a, b);
}

TEST(MetricsFile, GatherOnOneRankKeepsTheRecords) {
  const auto local = fake_steps(0, 3);  // 6 records, as 6 steps of one rank
  const auto all = gather_step_records(local, MPI_COMM_SELF);
  ASSERT_EQ(all.size(), local.size());
  for (size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].t_comp, local[i].t_comp);
    EXPECT_EQ(all[i].comm_bytes, local[i].comm_bytes);
    EXPECT_EQ(all[i].last_rank, local[i].last_rank);
    EXPECT_EQ(all[i].skew, local[i].skew);
  }
  const RunEnvironment env = gather_run_environment(MPI_COMM_SELF);
  EXPECT_EQ(env.world_size, 1);
  EXPECT_EQ(env.ranks_per_node, 1);
  EXPECT_FALSE(env.hosts.empty());
}

std::vector<std::string> read_strings(hid_t file, const char* name) {
  H5Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  std::vector<char*> p = read_all<char*>(file, name, type);
  std::vector<std::string> out;
  for (char* c : p) {
    out.push_back(c ? c : "");
    H5free_memory(c);
  }
  return out;
}

// The model group: tensors, buckets and layers as given, layer times as the mean of the steps added.
TEST(MetricsFile, WritesTheModelGroup) {
  MetricsScratch dir;
  const fs::path p = dir.path() / "m.h5";
  MetricsFile m(p, false);
  m.set_run_info(fake_info());
  ModelInfo model;
  model.tensor_names = {"fc.bias", "fc.weight", "conv.weight"};
  model.tensor_offsets = {0, 10, 970};
  model.tensor_floats = {10, 960, 30};
  model.bucket_offsets = {0, 970};
  model.bucket_floats = {970, 30};
  model.layer_names = {"conv", "relu", "fc"};
  m.set_model(model);
  const std::vector<double> f1{1, 2, 3}, b1{4, 5, 6}, f2{3, 4, 5}, b2{6, 7, 8};
  m.add_layer_times(f1, b1);
  m.add_layer_times(f2, b2);
  EXPECT_NE(error_of([&] { m.add_layer_times(std::vector<double>{1, 2}, b1); }).find("2 layer times for 3 layers"),
            std::string::npos);
  m.add_epoch(fake_epoch(1, 3, 2.0), fake_steps(0, 3));
  m.write();

  H5Handle f = h5_open_read(p);
  EXPECT_EQ(read_strings(f, "model/tensor_name"), model.tensor_names);
  EXPECT_EQ(read_all<int64_t>(f, "model/tensor_offset", H5T_NATIVE_INT64), (std::vector<int64_t>{0, 10, 970}));
  EXPECT_EQ(read_all<int64_t>(f, "model/tensor_floats", H5T_NATIVE_INT64), (std::vector<int64_t>{10, 960, 30}));
  EXPECT_EQ(read_all<int64_t>(f, "model/bucket_offset", H5T_NATIVE_INT64), (std::vector<int64_t>{0, 970}));
  EXPECT_EQ(read_all<int64_t>(f, "model/bucket_floats", H5T_NATIVE_INT64), (std::vector<int64_t>{970, 30}));
  EXPECT_EQ(read_strings(f, "model/layer_name"), model.layer_names);
  EXPECT_EQ(read_all<double>(f, "model/layer_forward", H5T_NATIVE_DOUBLE), (std::vector<double>{2, 3, 4}));
  EXPECT_EQ(read_all<double>(f, "model/layer_backward", H5T_NATIVE_DOUBLE), (std::vector<double>{5, 6, 7}));
  EXPECT_EQ(attr_double(f, "model", "layer_steps"), 2.0);
  EXPECT_EQ(attr_string(f, "model/layer_forward", "units"), "s");
  EXPECT_EQ(attr_string(f, "model/bucket_floats", "units"), "floats");
}

}  // namespace
}  // namespace cifar
