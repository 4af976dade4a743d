#include "cifar_mpi/metrics/metrics_file.hpp"

#include <dnnl.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <limits>
#include <cstring>
#include <thread>

#include "cifar_mpi/util/atomic_file.hpp"
#include "cifar_mpi/util/hdf5_file.hpp"
#include "cifar_mpi/util/mpi_check.hpp"
#include "cifar_mpi/util/mpi_library.hpp"

namespace cifar {

namespace fs = std::filesystem;

// ---- environment and gathering -------------------------------------------------------------

RunEnvironment gather_run_environment(MPI_Comm comm) {
  RunEnvironment env;
  int rank = 0;
  MPI_CHECK(MPI_Comm_rank(comm, &rank));
  MPI_CHECK(MPI_Comm_size(comm, &env.world_size));
  MPI_Comm node = MPI_COMM_NULL;
  MPI_CHECK(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node));
  int local_size = 1, local_rank = 0;
  MPI_CHECK(MPI_Comm_size(node, &local_size));
  MPI_CHECK(MPI_Comm_rank(node, &local_rank));
  MPI_CHECK(MPI_Comm_free(&node));
  env.ranks_per_node = local_size;  // rank 0's view is the one that is kept
  env.hardware_threads = std::thread::hardware_concurrency();
  int over = env.hardware_threads > 0 && static_cast<unsigned>(local_size) > env.hardware_threads ? 1 : 0;
  int leaders = local_rank == 0 ? 1 : 0;
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &over, 1, MPI_INT, MPI_MAX, comm));
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &leaders, 1, MPI_INT, MPI_SUM, comm));
  env.oversubscribed = over != 0;
  env.nodes = leaders;

  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int len = 0;
  MPI_CHECK(MPI_Get_processor_name(name, &len));
  std::vector<char> all(rank == 0 ? static_cast<size_t>(env.world_size) * MPI_MAX_PROCESSOR_NAME : 0);
  MPI_CHECK(MPI_Gather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0, comm));
  if (rank == 0) {
    std::vector<std::string> unique;  // in rank order, first occurrence
    for (int r = 0; r < env.world_size; ++r) {
      const char* p = all.data() + static_cast<size_t>(r) * MPI_MAX_PROCESSOR_NAME;
      std::string h(p, strnlen(p, MPI_MAX_PROCESSOR_NAME));
      if (std::find(unique.begin(), unique.end(), h) == unique.end()) unique.push_back(h);
    }
    for (size_t i = 0; i < unique.size(); ++i) env.hosts += (i ? "," : "") + unique[i];
  } else {
    env.hosts.assign(name, static_cast<size_t>(len));
  }
  return env;
}

namespace {
constexpr int kFields = 12;  // a StepRecord travels as 12 doubles (counts are exact below 2^53)

void pack(const StepRecord& s, double* d) {
  d[0] = s.t_data, d[1] = s.t_comp, d[2] = s.t_comm, d[3] = s.t_wait, d[4] = s.t_update, d[5] = s.loss;
  d[6] = static_cast<double>(s.comm_calls), d[7] = static_cast<double>(s.comm_bytes);
  d[8] = s.last_rank, d[9] = s.skew;
  d[10] = s.t_progress, d[11] = s.overlapped;
}
StepRecord unpack(const double* d) {
  StepRecord s;
  s.t_data = d[0], s.t_comp = d[1], s.t_comm = d[2], s.t_wait = d[3], s.t_update = d[4], s.loss = d[5];
  s.comm_calls = static_cast<uint32_t>(d[6]);
  s.comm_bytes = static_cast<uint64_t>(d[7]);
  s.last_rank = static_cast<int32_t>(d[8]), s.skew = d[9];
  s.t_progress = d[10], s.overlapped = static_cast<uint8_t>(d[11]);
  return s;
}
}  // namespace

std::vector<StepRecord> gather_step_records(std::span<const StepRecord> local, MPI_Comm comm) {
  int rank = 0, world = 1;
  MPI_CHECK(MPI_Comm_rank(comm, &rank));
  MPI_CHECK(MPI_Comm_size(comm, &world));
  // Agree on the count first: a mismatch would scramble the [step][rank] layout.
  long counts[2] = {static_cast<long>(local.size()), -static_cast<long>(local.size())};
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, counts, 2, MPI_LONG, MPI_MAX, comm));
  if (counts[0] != -counts[1])
    throw Error("metrics: ranks recorded different numbers of steps this epoch (" + std::to_string(-counts[1]) +
                " to " + std::to_string(counts[0]) + ")");
  const size_t steps = local.size();
  std::vector<double> send(steps * kFields);
  for (size_t i = 0; i < steps; ++i) pack(local[i], send.data() + i * kFields);
  std::vector<double> recv(rank == 0 ? send.size() * static_cast<size_t>(world) : 0);
  const int n = checked_mpi_count(send.size());
  MPI_CHECK(MPI_Gather(send.data(), n, MPI_DOUBLE, recv.data(), n, MPI_DOUBLE, 0, comm));
  std::vector<StepRecord> out;
  if (rank != 0) return out;
  out.resize(steps * static_cast<size_t>(world));
  for (size_t r = 0; r < static_cast<size_t>(world); ++r)  // received [rank][step] -> [step][rank]
    for (size_t s = 0; s < steps; ++s) out[s * world + r] = unpack(recv.data() + (r * steps + s) * kFields);
  return out;
}

// ---- paths ---------------------------------------------------------------------------------

namespace {

std::string local_time(const char* fmt) {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, fmt, &tm);
  return buf;
}

}  // namespace

fs::path default_metrics_path(int world_size) {
  const fs::path dir = "results";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw Error("cannot create folder '" + fs::absolute(dir).string() + "' for the default metrics file (" +
                ec.message() + "); name a file with --metrics FILE.h5");
  const std::string stem = "run-" + local_time("%Y%m%d-%H%M%S") + "-np" + std::to_string(world_size);
  fs::path p = dir / (stem + ".h5");
  for (int k = 2; fs::exists(p); ++k) p = dir / (stem + "-" + std::to_string(k) + ".h5");
  return p;
}

MetricsFile::MetricsFile(fs::path path, bool force) : path_(std::move(path)) {
  if (path_.empty()) throw Error("metrics: empty file name");
  if (fs::is_directory(path_)) throw Error("metrics file " + path_.string() + " is a folder; name a file (.h5)");
  if (fs::exists(path_) && !force)
    throw Error("metrics file " + path_.string() + " already exists; use --force to overwrite it");
  check_can_write("metrics file", path_);
}

// ---- records and summary -------------------------------------------------------------------

void MetricsFile::add_epoch(const EpochRecord& epoch, std::vector<StepRecord> steps_by_rank) {
  const size_t world = static_cast<size_t>(std::max(1, info_.env.world_size));
  if (steps_by_rank.size() != epoch.steps * world)
    throw Error("metrics: epoch " + std::to_string(epoch.epoch) + " has " + std::to_string(steps_by_rank.size()) +
                " step records, expected " + std::to_string(epoch.steps) + " steps x " + std::to_string(world) +
                " ranks");
  epochs_.push_back(epoch);
  running_steps_.clear();
  steps_.insert(steps_.end(), steps_by_rank.begin(), steps_by_rank.end());
  step_epoch_.insert(step_epoch_.end(), epoch.steps, epoch.epoch);
}

void MetricsFile::set_model(ModelInfo model) {
  const size_t t = model.tensor_names.size(), k = model.bucket_offsets.size();
  if (model.tensor_offsets.size() != t || model.tensor_floats.size() != t || model.bucket_floats.size() != k)
    throw Error("metrics: model description with mismatched tensor or bucket lists");
  model_ = std::move(model);
  layer_forward_sum_.assign(model_.layer_names.size(), 0.0);
  layer_backward_sum_.assign(model_.layer_names.size(), 0.0);
  layer_steps_ = 0;
}

void MetricsFile::add_layer_times(std::span<const double> forward_s, std::span<const double> backward_s) {
  if (forward_s.size() != layer_forward_sum_.size() || backward_s.size() != layer_backward_sum_.size())
    throw Error("metrics: " + std::to_string(forward_s.size()) + " layer times for " +
                std::to_string(layer_forward_sum_.size()) + " layers");
  for (size_t i = 0; i < forward_s.size(); ++i) {
    layer_forward_sum_[i] += forward_s[i];
    layer_backward_sum_[i] += backward_s[i];
  }
  ++layer_steps_;
}

void MetricsFile::set_complete(double total_wall) {
  complete_ = true;
  total_wall_ = total_wall;
}

MetricsSummary summarize(std::span<const EpochRecord> epochs, std::span<const StepRecord> steps_by_rank,
                         int world_size, bool eval, bool overlap, std::optional<double> total_wall) {
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  MetricsSummary m;
  const size_t world = static_cast<size_t>(std::max(1, world_size));
  m.epochs = epochs.size();
  m.steps = steps_by_rank.size() / world;
  for (const auto& e : epochs) {
    m.total_train_time += e.wall;
    m.images += e.images;
  }
  m.total_wall = total_wall.value_or(m.total_train_time);
  m.images_per_second = m.total_train_time > 0 ? static_cast<double>(m.images) / m.total_train_time : 0;
  m.avg_iteration_time = m.steps ? m.total_train_time / static_cast<double>(m.steps) : 0;
  double calls = 0, bytes = 0;
  for (size_t r = 0; r < world; ++r) {
    double comm = 0, wait = 0;
    for (size_t s = 0; s < m.steps; ++s) {
      const StepRecord& x = steps_by_rank[s * world + r];
      comm += x.t_comm;
      wait += x.t_wait;
      m.total_comp_time += x.t_comp;
      m.total_data_time += x.t_data;
      m.total_update_time += x.t_update;
      calls += x.comm_calls;
      bytes += static_cast<double>(x.comm_bytes);
    }
    m.total_comm_time += comm;
    m.total_wait_time += wait;
    m.total_comm_time_max = std::max(m.total_comm_time_max, comm);
    m.total_wait_time_max = std::max(m.total_wait_time_max, wait);
  }
  const double w = static_cast<double>(world);
  m.total_comm_time /= w, m.total_wait_time /= w, m.total_comp_time /= w;
  m.total_data_time /= w, m.total_update_time /= w;
  m.comm_bytes_per_rank = bytes / w;
  m.comm_calls_per_epoch = m.epochs ? calls / w / static_cast<double>(m.epochs) : 0;
  m.compute_to_comm_ratio = calls > 0 && m.total_comm_time > 0 ? m.total_comp_time / m.total_comm_time : nan;
  m.final_test_accuracy = !epochs.empty() && eval ? epochs.back().test_accuracy : nan;
  m.final_train_loss = !epochs.empty() ? epochs.back().train_loss : nan;
  m.overlap = overlap_figure(steps_by_rank, world_size, overlap);
  return m;
}

MetricsSummary MetricsFile::summary() const {
  MetricsSummary m = summarize(epochs_, steps_, info_.env.world_size, info_.eval, info_.overlap,
                               complete_ ? std::optional<double>(total_wall_) : std::nullopt);
  m.checkpoints_written = checkpoints_written_;
  m.checkpoint_seconds = checkpoint_seconds_;
  return m;
}

// ---- writing -------------------------------------------------------------------------------

namespace {

H5Handle scalar_space() { return {H5Screate(H5S_SCALAR), H5Sclose}; }

void attr_write(hid_t loc, const std::string& name, hid_t file_type, hid_t mem_type, const void* value) {
  H5Handle space = scalar_space();
  H5Handle a(H5Acreate2(loc, name.c_str(), file_type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  H5_CHECK(a.get(), "cannot create attribute " + name);
  H5_CHECK(H5Awrite(a, mem_type, value), "cannot write attribute " + name);
}

// Variable-length UTF-8: h5py reads it as a Python str.
void attr(hid_t loc, const std::string& name, const std::string& value) {
  H5Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  const char* p = value.c_str();
  attr_write(loc, name, type, type, &p);
}
void attr(hid_t loc, const std::string& name, const char* value) { attr(loc, name, std::string(value)); }
void attr(hid_t loc, const std::string& name, double value) {
  attr_write(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}
void attr_int(hid_t loc, const std::string& name, long long value) {
  attr_write(loc, name, H5T_STD_I64LE, H5T_NATIVE_LLONG, &value);
}

H5Handle make_group(hid_t loc, const std::string& name, const std::string& description) {
  H5Handle g(H5Gcreate2(loc, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  H5_CHECK(g.get(), "cannot create group " + name);
  attr(g, "description", description);
  return g;
}

void dataset(hid_t loc, const std::string& name, hid_t file_type, hid_t mem_type, const void* data,
             std::vector<hsize_t> dims, const std::string& units, const std::string& description) {
  H5Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  H5Handle ds(H5Dcreate2(loc, name.c_str(), file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  H5_CHECK(ds.get(), "cannot create dataset " + name);
  size_t n = 1;
  for (auto d : dims) n *= d;
  if (n > 0) H5_CHECK(H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "cannot write dataset " + name);
  attr(ds, "units", units);
  attr(ds, "description", description);
}

// A [n] dataset of variable-length UTF-8 strings (h5py reads them as bytes; .asstr() gives str).
void string_dataset(hid_t loc, const std::string& name, const std::vector<std::string>& values,
                    const std::string& description) {
  H5Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  std::vector<const char*> p(values.size());
  for (size_t i = 0; i < values.size(); ++i) p[i] = values[i].c_str();
  dataset(loc, name, type, type, p.data(), {values.size()}, "1", description);
}

void int_dataset(hid_t loc, const std::string& name, const std::vector<size_t>& values, const std::string& units,
                 const std::string& description) {
  const std::vector<int64_t> v(values.begin(), values.end());
  dataset(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, v.data(), {v.size()}, units, description);
}

template <class F>
std::vector<double> column(const std::vector<StepRecord>& v, F f) {
  std::vector<double> out(v.size());
  std::transform(v.begin(), v.end(), out.begin(), f);
  return out;
}

std::string versions_hdf5() {
  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
  return std::to_string(maj) + "." + std::to_string(min) + "." + std::to_string(rel);
}

std::string versions_onednn() {
  const dnnl_version_t* v = dnnl_version();
  std::string s = std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
  if (v->hash && std::strcmp(v->hash, "N/A") != 0) s += std::string(" (") + v->hash + ")";
  return s;
}

// The temporary file reaches the disk before it is renamed over the previous one.
void sync_file(const fs::path& p) {
  const int fd = ::open(p.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

namespace {

// Root attributes: what ran, where, with what.
void write_run_attributes(hid_t f, const RunInfo& info, bool complete) {
  const size_t world = static_cast<size_t>(std::max(1, info.env.world_size));
  attr(f, "format", "cifar_mpi metrics v1 (docs/metrics.md)");
  attr_int(f, "complete", complete ? 1 : 0);
  attr_int(f, "start_global_step", static_cast<long long>(info.start_global_step));
  for (const auto& [key, value] : info.config) attr(f, "config." + key, value);
  attr_int(f, "world_size", info.env.world_size);
  attr_int(f, "ranks_per_node", info.env.ranks_per_node);
  attr_int(f, "nodes", info.env.nodes);
  attr_int(f, "threads_per_rank", info.threads);
  attr_int(f, "hardware_threads", info.env.hardware_threads);
  attr_int(f, "oversubscribed", info.env.oversubscribed ? 1 : 0);
  attr(f, "hosts", info.env.hosts);
  attr(f, "strategy", info.strategy);
  attr(f, "bucket_mb", info.bucket_mb);
  attr_int(f, "buckets", static_cast<long long>(info.buckets));
  attr_int(f, "overlap", info.overlap ? 1 : 0);
  attr(f, "wire_dtype", info.wire_dtype);
  for (const auto& [key, value] : info.meta) attr(f, "meta." + key, value);
  attr_int(f, "epochs_planned", info.epochs);
  attr_int(f, "max_steps", info.max_steps);
  attr_int(f, "batch_per_rank", static_cast<long long>(info.batch_per_rank));
  attr_int(f, "global_batch", static_cast<long long>(info.batch_per_rank * world));
  attr_int(f, "steps_per_epoch", static_cast<long long>(info.steps_per_epoch));
  attr_int(f, "parameter_count", static_cast<long long>(info.parameter_count));
  attr_int(f, "gradient_bytes", static_cast<long long>(info.gradient_bytes));
  attr(f, "start_time", info.start_time);
  attr(f, "git_commit", CIFAR_GIT_COMMIT);
  attr(f, "version_cifar_mpi", CIFAR_VERSION);
  attr(f, "version_onednn", versions_onednn());
  attr(f, "version_mpi", mpi_library_version());
  attr(f, "version_hdf5", versions_hdf5());
  attr(f, "version_compiler", "g++ " __VERSION__);
}

// steps/last_rank and steps/skew: who was late at each step's first gradient reduction.
void write_lateness(hid_t g, const std::vector<StepRecord>& steps_by_rank, const std::vector<hsize_t>& dims) {
  std::vector<int32_t> last(steps_by_rank.size());
  std::vector<double> skew(steps_by_rank.size());
  for (size_t i = 0; i < steps_by_rank.size(); ++i) last[i] = steps_by_rank[i].last_rank, skew[i] = steps_by_rank[i].skew;
  dataset(g, "last_rank", H5T_STD_I32LE, H5T_NATIVE_INT32, last.data(), dims, "1",
          "the rank this rank waited for last at the step's first gradient reduction (itself if it arrived "
          "last; -1 with one rank)");
  dataset(g, "skew", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, skew.data(), dims, "s",
          "how long this rank waited there for last_rank (0 on the rank that arrived last)");
}

// steps/: [step, rank].
void write_steps(hid_t f, const std::vector<StepRecord>& steps_by_rank, const std::vector<int>& step_epoch,
                 size_t world) {
  const size_t steps = step_epoch.size();
  H5Handle g = make_group(f, "steps", "per-step, per-rank records: datasets are [step, rank]");
  const std::vector<hsize_t> dims{steps, world};
  const auto f64 = [&](const char* name, auto get, const char* units, const std::string& what) {
    const auto v = column(steps_by_rank, get);
    dataset(g, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v.data(), dims, units, what);
  };
  f64("t_data", [](const StepRecord& s) { return s.t_data; }, "s", "gathering and normalising the batch");
  f64("t_comp", [](const StepRecord& s) { return s.t_comp; }, "s",
      "forward + backward (with overlap: including t_progress)");
  f64("t_comm", [](const StepRecord& s) { return s.t_comm; }, "s",
      "wall time from the first bucket reduction's start to the last one's end");
  f64("t_wait", [](const StepRecord& s) { return s.t_wait; }, "s",
      "time the step waited for communication after backward");
  f64("t_update", [](const StepRecord& s) { return s.t_update; }, "s", "SGD update");
  f64("loss", [](const StepRecord& s) { return s.loss; }, "1", "this rank's mean cross-entropy of its batch");
  f64("t_progress", [](const StepRecord& s) { return s.t_progress; }, "s",
      "with overlap: the part of t_comp spent advancing the reductions between backward's layers");
  std::vector<uint8_t> overlapped(steps_by_rank.size());
  for (size_t i = 0; i < steps_by_rank.size(); ++i) overlapped[i] = steps_by_rank[i].overlapped;
  dataset(g, "overlapped", H5T_STD_U8LE, H5T_NATIVE_UINT8, overlapped.data(), dims, "1",
          "1 if the reductions ran beside backward; 0 without overlap, and on the steps an --overlap run "
          "held it back to measure the step without it (summary/overlap_*)");
  std::vector<uint32_t> calls(steps_by_rank.size());
  std::vector<uint64_t> bytes(steps_by_rank.size());
  for (size_t i = 0; i < steps_by_rank.size(); ++i)
    calls[i] = steps_by_rank[i].comm_calls, bytes[i] = steps_by_rank[i].comm_bytes;
  dataset(g, "comm_calls", H5T_STD_U32LE, H5T_NATIVE_UINT32, calls.data(), dims, "1",
          "collective calls of the step (one per bucket; 0 with one rank)");
  dataset(g, "comm_bytes", H5T_STD_U64LE, H5T_NATIVE_UINT64, bytes.data(), dims, "bytes",
          "gradient bytes this rank fed into the reductions");
  write_lateness(g, steps_by_rank, dims);
  dataset(g, "epoch", H5T_STD_I32LE, H5T_NATIVE_INT32, step_epoch.data(), {steps}, "1",
          "the epoch (1-based) each step belongs to");
}

// epochs/: one entry per completed epoch.
void write_epochs(hid_t f, const std::vector<EpochRecord>& epochs, bool eval) {
  H5Handle g = make_group(f, "epochs", "one entry per completed epoch");
  const hsize_t n = epochs.size();
  std::vector<int32_t> num(n);
  std::vector<int64_t> st(n), img(n);
  std::vector<double> tl(n), vl(n), acc(n), wall(n);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (size_t i = 0; i < n; ++i) {
    const EpochRecord& e = epochs[i];
    num[i] = e.epoch, st[i] = static_cast<int64_t>(e.steps), img[i] = static_cast<int64_t>(e.images);
    tl[i] = e.train_loss, wall[i] = e.wall;
    vl[i] = eval ? e.test_loss : nan;
    acc[i] = eval ? e.test_accuracy : nan;
  }
  dataset(g, "epoch", H5T_STD_I32LE, H5T_NATIVE_INT32, num.data(), {n}, "1", "epoch number (1-based)");
  dataset(g, "steps", H5T_STD_I64LE, H5T_NATIVE_INT64, st.data(), {n}, "1", "steps taken in the epoch");
  dataset(g, "images", H5T_STD_I64LE, H5T_NATIVE_INT64, img.data(), {n}, "1",
          "training images processed in the epoch, all ranks");
  dataset(g, "train_loss", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, tl.data(), {n}, "1",
          "mean training loss over the epoch's steps and the ranks");
  dataset(g, "test_loss", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, vl.data(), {n}, "1",
          "test-set cross-entropy after the epoch (NaN without --eval, and for an epoch stopped by a signal)");
  dataset(g, "test_accuracy", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, acc.data(), {n}, "fraction",
          "test-set accuracy after the epoch, 0..1 (NaN without --eval, and for an epoch stopped by a signal)");
  dataset(g, "wall", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, wall.data(), {n}, "s",
          "the epoch's training wall time on rank 0 (excludes evaluation)");
}

// summary/: attributes over the recorded epochs.
void write_summary(hid_t f, const MetricsSummary& m) {
  H5Handle g = make_group(f, "summary",
                          "run totals over the recorded epochs; per-rank totals are means over ranks, "
                          "times in seconds");
  attr_int(g, "epochs", static_cast<long long>(m.epochs));
  attr_int(g, "steps", static_cast<long long>(m.steps));
  attr_int(g, "images", static_cast<long long>(m.images));
  attr(g, "total_train_time", m.total_train_time);
  attr(g, "total_wall", m.total_wall);
  attr(g, "images_per_second", m.images_per_second);
  attr(g, "comm_calls_per_epoch", m.comm_calls_per_epoch);
  attr(g, "total_comm_time", m.total_comm_time);
  attr(g, "total_comm_time_max", m.total_comm_time_max);
  attr(g, "total_wait_time", m.total_wait_time);
  attr(g, "total_wait_time_max", m.total_wait_time_max);
  attr(g, "total_comp_time", m.total_comp_time);
  attr(g, "total_data_time", m.total_data_time);
  attr(g, "total_update_time", m.total_update_time);
  attr(g, "avg_iteration_time", m.avg_iteration_time);
  attr(g, "compute_to_comm_ratio", m.compute_to_comm_ratio);
  attr(g, "comm_bytes_per_rank", m.comm_bytes_per_rank);
  attr(g, "final_train_loss", m.final_train_loss);
  attr(g, "final_test_accuracy", m.final_test_accuracy);
  attr_int(g, "checkpoints_written", static_cast<long long>(m.checkpoints_written));
  attr(g, "checkpoint_seconds", m.checkpoint_seconds);
  // What overlap did to the step (overlap_figure.hpp, docs/metrics.md).
  const OverlapFigure& o = m.overlap;
  attr_int(g, "overlap_steps", static_cast<long long>(o.steps));
  attr_int(g, "overlap_reference_steps", static_cast<long long>(o.reference_steps));
  attr(g, "overlap_step", o.step);
  attr(g, "overlap_comp", o.comp);
  attr(g, "overlap_comm", o.comm);
  attr(g, "overlap_wait", o.wait);
  attr(g, "overlap_progress", o.progress);
  attr(g, "overlap_comp_ref", o.comp_ref);
  attr(g, "overlap_comm_ref", o.comm_ref);
  attr(g, "overlap_no_overlap_step", o.no_overlap_step);
  attr(g, "overlap_saving", o.saving);
  attr(g, "overlap_hidden", o.hidden);
  attr(g, "overlap_realised", o.realised);
  attr(g, "overlap_comp_inflation", o.comp_inflation);
}

// model/: the reduction plan beside the buckets: each bucket's all-reduce, where the plan came from,
// the link model it was chosen by and the timed backward it was planned from (empty if none).
void write_reduction_plan(hid_t g, const ModelInfo& m) {
  attr(g, "plan_source", m.plan_source);
  string_dataset(g, "bucket_algorithm", m.bucket_algorithms, "the all-reduce (table row) of each bucket");
  string_dataset(g, "link_algorithm", m.link_algorithms,
                 "the link model's all-reduces (--allreduce auto / --bucket-mb auto; empty if none was fitted)");
  dataset(g, "link_alpha", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, m.link_alpha.data(), {m.link_alpha.size()}, "s",
          "fitted latency of one reduction of each link_algorithm");
  dataset(g, "link_beta", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, m.link_beta.data(), {m.link_beta.size()}, "s/B",
          "fitted seconds per float32 byte of the bucket of each link_algorithm");
  int_dataset(g, "ready_floats", m.ready_floats, "floats",
              "the timed backward --bucket-mb auto planned from: arena prefix final at ready_time");
  dataset(g, "ready_time", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, m.ready_time.data(), {m.ready_time.size()}, "s",
          "seconds after backward began (slowest rank, minimum of 3 passes)");
}

// model/: tensors, buckets and per-layer times (the cost model's inputs).
void write_model(hid_t f, const ModelInfo& m, const std::vector<double>& forward_sum,
                 const std::vector<double>& backward_sum, size_t layer_steps) {
  H5Handle g = make_group(f, "model",
                          "the model as this run trained it: parameter tensors and buckets in backward "
                          "order, per-layer forward and backward times (rank 0, full batches)");
  attr_int(g, "layer_steps", static_cast<long long>(layer_steps));
  string_dataset(g, "tensor_name", m.tensor_names, "parameter tensors in arena (= backward) order");
  int_dataset(g, "tensor_offset", m.tensor_offsets, "floats", "offset into the gradient arena");
  int_dataset(g, "tensor_floats", m.tensor_floats, "floats", "elements of the tensor");
  int_dataset(g, "bucket_offset", m.bucket_offsets, "floats",
              "offset of each bucket into the gradient arena, in the order reduced (backward)");
  int_dataset(g, "bucket_floats", m.bucket_floats, "floats", "elements of each bucket");
  string_dataset(g, "layer_name", m.layer_names, "layers in forward order");
  write_reduction_plan(g, m);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double steps = static_cast<double>(layer_steps);
  std::vector<double> fwd(forward_sum.size()), bwd(backward_sum.size());
  for (size_t i = 0; i < fwd.size(); ++i) {
    fwd[i] = layer_steps ? forward_sum[i] / steps : nan;
    bwd[i] = layer_steps ? backward_sum[i] / steps : nan;
  }
  dataset(g, "layer_forward", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, fwd.data(), {fwd.size()}, "s",
          "mean forward time of each layer over the layer_steps full-batch steps, rank 0");
  dataset(g, "layer_backward", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, bwd.data(), {bwd.size()}, "s",
          "mean backward time of each layer over the layer_steps full-batch steps, rank 0 (with overlap: "
          "including advancing the reductions inside the layer)");
}

// evals/: every evaluation in order; the root attribute target_accuracy and the summary's time to it.
void write_evals(hid_t f, const std::vector<EvalRecord>& evals, double target) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  attr(f, "target_accuracy", target > 0 ? target : nan);
  H5Handle g = make_group(f, "evals", "every evaluation of the test set, in order (--eval-every steps and each "
                                      "epoch's end); times from the start of training");
  const size_t n = evals.size();
  std::vector<int64_t> step(n);
  std::vector<double> epoch(n), wall(n), train(n), loss(n), acc(n);
  for (size_t i = 0; i < n; ++i) {
    step[i] = static_cast<int64_t>(evals[i].step);
    epoch[i] = evals[i].epoch, wall[i] = evals[i].wall, train[i] = evals[i].train_time;
    loss[i] = evals[i].test_loss, acc[i] = evals[i].test_accuracy;
  }
  dataset(g, "step", H5T_STD_I64LE, H5T_NATIVE_INT64, step.data(), {n}, "steps",
          "optimizer steps done when evaluated, from the start of the whole run");
  dataset(g, "epoch", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, epoch.data(), {n}, "epochs", "step / steps_per_epoch");
  dataset(g, "wall", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, wall.data(), {n}, "s",
          "since the start of training, evaluations included (rank 0)");
  dataset(g, "train_time", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, train.data(), {n}, "s",
          "since the start of training, evaluations excluded (rank 0)");
  dataset(g, "test_loss", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, loss.data(), {n}, "1", "mean test cross-entropy");
  dataset(g, "test_accuracy", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, acc.data(), {n}, "fraction",
          "test accuracy");
}

void write_target_summary(hid_t f, const TargetSummary& t) {
  H5Handle g(H5Gopen2(f, "summary", H5P_DEFAULT), H5Gclose);
  H5_CHECK(g.get(), "cannot open group summary");
  attr_int(g, "target_reached", t.reached ? 1 : 0);
  attr(g, "time_to_target", t.time);
  attr(g, "time_to_target_train", t.train_time);
  attr_int(g, "steps_to_target", t.steps);
  attr(g, "epochs_to_target", t.epochs);
}

}  // namespace

void MetricsFile::write() const {
  const fs::path tmp = temp_path_for(path_);
  try {
    const auto lock = h5_lock();  // the checkpoint writer thread may be writing (HDF5 is not thread-safe)
    H5Handle f = h5_create(tmp);
    write_run_attributes(f, info_, complete_);
    const size_t world = static_cast<size_t>(std::max(1, info_.env.world_size));
    if (running_steps_.empty()) {
      write_steps(f, steps_, step_epoch_, world);
    } else {  // the finished epochs' steps, then the running epoch's so far
      std::vector<StepRecord> steps = steps_;
      steps.insert(steps.end(), running_steps_.begin(), running_steps_.end());
      std::vector<int> epochs = step_epoch_;
      epochs.insert(epochs.end(), running_steps_.size() / world, running_epoch_);
      write_steps(f, steps, epochs, world);
    }
    write_epochs(f, epochs_, info_.eval);
    write_model(f, model_, layer_forward_sum_, layer_backward_sum_, layer_steps_);
    write_summary(f, summary());
    write_evals(f, evals_, info_.target_accuracy);
    write_target_summary(f, summarize_target(evals_, info_.target_accuracy));
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  // The file is closed (H5Handle above); make it durable, then put it in place.
  sync_file(tmp);
  commit_temp_file(tmp, path_);
}

}  // namespace cifar
