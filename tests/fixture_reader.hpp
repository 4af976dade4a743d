#pragma once
// A tiny reader for the PyTorch fixture simplecnn_steps.h5 on HDF5's C API. Header-only; errors
// are exceptions that name the file and the dataset. The file is the one in the shared/ folder
// beside the checkout (CIFAR_SHARED_FIXTURE) when it is there, else the one ctest's set-up test
// fixture.simplecnn writes into the build folder (CIFAR_BUILD_FIXTURE) with
// tools/cifar_tools/make_simplecnn_fixture.py, which computes the same numbers with Debian's torch.
// A test that reads it has PyTorch or Fixture in its name, so that ctest runs the set-up first
// (tests/CMakeLists.txt).
//
// Fixture layout (written by PyTorch 1.13, float32, batch of 4; every float dataset is
// H5T_IEEE_F32LE, NCHW / OIHW / [out,in] as in PyTorch):
//   input   [4,3,32,32]  f32          labels  [4]  int64 (H5T_STD_I64LE)
//   init/<p>, step1/grad/<p>, step1/after/<p>, step2/grad/<p>, step2/after/<p> for <p> in
//     conv1.weight [32,3,3,3]  conv1.bias [32]  conv2.weight [64,32,3,3]  conv2.bias [64]
//     fc1.weight [128,2304]    fc1.bias [128]   fc2.weight [10,128]        fc2.bias [10]
//   step1/act/<a>, step1/dact/<a> for <a> in
//     conv1_out [4,32,30,30] relu1 [4,32,30,30] pool1 [4,32,15,15] conv2_out [4,64,13,13]
//     relu2 [4,64,13,13] pool2 [4,64,6,6] flat [4,2304] fc1_out [4,128] relu3 [4,128]
//     logits [4,10]
//   step1/loss, step2/loss   scalar f32 (dataspace SCALAR: shape {})
// Both steps use the same `input` / `labels` batch.
#include <hdf5.h>

#include <cstdint>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#if !defined(CIFAR_SHARED_FIXTURE) || !defined(CIFAR_BUILD_FIXTURE)
#error "CIFAR_SHARED_FIXTURE and CIFAR_BUILD_FIXTURE must be defined (tests/CMakeLists.txt gives them to unit_tests)"
#endif

namespace cifar::testing {

// The shared copy if there is one, else the build folder's (which may not exist yet).
inline std::string fixture_path() {
  std::error_code ec;
  return std::filesystem::exists(CIFAR_SHARED_FIXTURE, ec) ? CIFAR_SHARED_FIXTURE : CIFAR_BUILD_FIXTURE;
}

// Empty if the fixture can be read; otherwise why not and how to get it (for GTEST_SKIP messages).
inline std::string fixture_unavailable_reason(const std::string& file = fixture_path()) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec))
    return "no such file, nor " CIFAR_SHARED_FIXTURE "; ctest makes it first (test fixture.simplecnn) "
           "when python3 has torch: apt-get install python3-torch (tools/install_deps.sh --tests), or "
           "PYTHONPATH=tools python3 -m cifar_tools.make_simplecnn_fixture " + file;
  if (!std::filesystem::is_regular_file(file, ec)) return "not a regular file";
  return {};
}

inline bool fixture_available() { return fixture_unavailable_reason().empty(); }

namespace detail {

// Silences HDF5's automatic error-stack printing for its lifetime (our exceptions say what
// failed), restoring whatever handler was installed before.
class QuietHdf5Errors {
 public:
  QuietHdf5Errors() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietHdf5Errors() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  QuietHdf5Errors(const QuietHdf5Errors&) = delete;
  QuietHdf5Errors& operator=(const QuietHdf5Errors&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// Closes an HDF5 id with the given function when it goes out of scope.
class Hid {
 public:
  Hid(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Hid() {
    if (id_ >= 0) close_(id_);
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

[[noreturn]] inline void fail(const std::string& file, const std::string& dataset,
                              const std::string& what) {
  throw std::runtime_error("fixture " + file + ", dataset '" + dataset + "': " + what);
}

// Opens file/dataset, checks its type class, fills `shape`, returns the element count, and reads
// it into `out` (resized) as `mem_type`.
template <class T>
void read_dataset(const std::string& file, const std::string& dataset, H5T_class_t want_class,
                  hid_t mem_type, std::vector<T>& out, std::vector<size_t>* shape) {
  QuietHdf5Errors quiet;
  Hid f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!f.ok()) fail(file, dataset, "cannot open the file");
  Hid d(H5Dopen2(f.get(), dataset.c_str(), H5P_DEFAULT), H5Dclose);
  if (!d.ok()) fail(file, dataset, "no such dataset");
  Hid t(H5Dget_type(d.get()), H5Tclose);
  if (!t.ok()) fail(file, dataset, "cannot get its datatype");
  const H5T_class_t cls = H5Tget_class(t.get());
  if (cls != want_class)
    fail(file, dataset, want_class == H5T_FLOAT ? "is not a floating-point dataset"
                                                : "is not an integer dataset");
  Hid s(H5Dget_space(d.get()), H5Sclose);
  if (!s.ok()) fail(file, dataset, "cannot get its dataspace");
  const int rank = H5Sget_simple_extent_ndims(s.get());
  if (rank < 0) fail(file, dataset, "is not a simple (or scalar) dataspace");
  std::vector<hsize_t> dims(size_t(rank), 0);
  if (rank > 0 && H5Sget_simple_extent_dims(s.get(), dims.data(), nullptr) < 0)
    fail(file, dataset, "cannot get its dimensions");
  size_t n = 1;  // a scalar dataspace (rank 0) holds one element
  for (hsize_t x : dims) n *= size_t(x);
  if (shape) shape->assign(dims.begin(), dims.end());
  out.assign(n, T{});
  if (n > 0 && H5Dread(d.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
    fail(file, dataset, "H5Dread failed");
}

}  // namespace detail

// A floating-point dataset as float32 (converted by HDF5 if stored otherwise). `shape` receives
// its dimensions ({} for a scalar).
inline std::vector<float> read_f32(const std::string& dataset, std::vector<size_t>* shape = nullptr,
                                   const std::string& file = fixture_path()) {
  std::vector<float> out;
  detail::read_dataset(file, dataset, H5T_FLOAT, H5T_NATIVE_FLOAT, out, shape);
  return out;
}

// An integer dataset of any width/sign (the fixture's labels are int64) as int32; throws if a
// value does not fit.
inline std::vector<int32_t> read_labels(const std::string& dataset = "labels",
                                        std::vector<size_t>* shape = nullptr,
                                        const std::string& file = fixture_path()) {
  std::vector<int64_t> wide;
  detail::read_dataset(file, dataset, H5T_INTEGER, H5T_NATIVE_INT64, wide, shape);
  std::vector<int32_t> out(wide.size());
  for (size_t i = 0; i < wide.size(); ++i) {
    if (wide[i] < std::numeric_limits<int32_t>::min() || wide[i] > std::numeric_limits<int32_t>::max())
      detail::fail(file, dataset, "value " + std::to_string(wide[i]) + " at " + std::to_string(i) +
                                      " does not fit in int32");
    out[i] = int32_t(wide[i]);
  }
  return out;
}

// A scalar float dataset (e.g. "step1/loss").
inline float read_scalar_f32(const std::string& dataset, const std::string& file = fixture_path()) {
  std::vector<float> v = read_f32(dataset, nullptr, file);
  if (v.size() != 1) detail::fail(file, dataset, "is not a scalar (" + std::to_string(v.size()) + " elements)");
  return v[0];
}

}  // namespace cifar::testing
