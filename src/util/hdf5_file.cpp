#include "cifar_mpi/util/hdf5_file.hpp"

#include "cifar_mpi/util/atomic_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

namespace cifar {

namespace {

// The operating system's reason for the last failed HDF5 call on this thread ("No space left on
// device", "File too large", "Read-only file system"), or "" if it was not a system call's.
thread_local std::string t_reason;

herr_t find_reason(unsigned, const H5E_error2_t* e, void* data) {
  static const std::string key = "error message = '";
  if (e && e->desc) {
    const std::string d = e->desc;
    const size_t p = d.find(key);
    if (p != std::string::npos) {
      const size_t q = d.find('\'', p + key.size());
      *static_cast<std::string*>(data) = d.substr(p + key.size(), q == std::string::npos ? q : q - p - key.size());
    }
  }
  return 0;
}

// HDF5's "automatic" error handler, called as a failing API call returns: instead of printing
// the stack, it keeps the system's reason for the message our caller throws.
herr_t record_reason(hid_t stack, void*) {
  std::string reason;
  H5Ewalk2(stack, H5E_WALK_UPWARD, find_reason, &reason);
  t_reason = reason;
  return 0;
}

herr_t close_file_checked(hid_t f) {
  std::string name(4096, '\0');
  const ssize_t n = H5Fget_name(f, name.data(), name.size());
  name.resize(n > 0 ? std::min(static_cast<size_t>(n), name.size() - 1) : 0);
  const herr_t rc = H5Fclose(f);
  // H5Handle's destructor cannot throw: the failure waits for commit_temp_file (atomic_file.hpp).
  if (rc < 0 && !name.empty()) mark_temp_file_failed(name, t_reason);
  return rc;
}

}  // namespace

std::unique_lock<std::mutex> h5_lock() {
  static std::mutex m;
  return std::unique_lock<std::mutex>(m);
}

void h5_silence_errors() { H5Eset_auto2(H5E_DEFAULT, record_reason, nullptr); }

std::string h5_error_reason() {
  std::string r = t_reason.empty() ? "" : " (" + t_reason + ")";
  t_reason.clear();
  return r;
}

H5Handle h5_open_read(const std::filesystem::path& path) {
  h5_silence_errors();
  if (!std::filesystem::exists(path)) throw Error(path.string() + ": file not found");
  if (std::filesystem::is_directory(path)) throw Error(path.string() + ": is a folder, not an HDF5 file");
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) throw Error(path.string() + ": not a readable HDF5 file (truncated or corrupt?)");
  return {f, H5Fclose};
}

H5Handle h5_create(const std::filesystem::path& path) {
  h5_silence_errors();
  t_reason.clear();
  // a failed close of an earlier file of this name (whose writer gave up) is not this file's
  forget_temp_file_failure(path.string());
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) {
    const std::string reason = h5_error_reason();
    throw Error(path.string() + ": cannot create HDF5 file" +
                (reason.empty() ? std::string(" (missing or read-only directory?)") : reason));
  }
  return {f, close_file_checked};
}

bool h5_exists(hid_t loc, const std::string& path) {
  // H5Lexists needs every intermediate group to exist: check each prefix.
  size_t pos = 0;
  while (true) {
    pos = path.find('/', pos + 1);
    const std::string prefix = path.substr(0, pos);
    if (H5Lexists(loc, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (pos == std::string::npos) return true;
  }
}

bool has_checksum(hid_t dataset) {
  H5Handle dcpl(H5Dget_create_plist(dataset), H5Pclose);
  if (dcpl.get() < 0) return false;
  unsigned flags = 0;
  size_t nelmts = 0;
  unsigned config = 0;
  return H5Pget_filter_by_id2(dcpl, H5Z_FILTER_FLETCHER32, &flags, &nelmts, nullptr, 0, nullptr, &config) >= 0;
}

std::vector<float> h5_read_floats(hid_t file, const std::string& file_name, const std::string& dataset,
                                  const std::vector<size_t>& shape) {
  if (!h5_exists(file, dataset)) throw Error(file_name + ": dataset '" + dataset + "' is missing");
  H5Handle ds(H5Dopen2(file, dataset.c_str(), H5P_DEFAULT), H5Dclose);
  H5Handle space(H5Dget_space(ds), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(rank > 0 ? static_cast<size_t>(rank) : 0);
  if (rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  auto fmt = [](const auto& d) {
    std::string s = "[";
    for (size_t i = 0; i < d.size(); ++i) s += (i ? "," : "") + std::to_string(d[i]);
    return s + "]";
  };
  bool same = dims.size() == shape.size();
  for (size_t i = 0; same && i < dims.size(); ++i) same = dims[i] == shape[i];
  if (!same)
    throw Error(file_name + ": dataset '" + dataset + "' has shape " + fmt(dims) + ", expected " + fmt(shape));
  size_t n = 1;
  for (auto d : shape) n *= d;
  std::vector<float> out(n);
  if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0) {
    // With a checksum, a failed read is most often a damaged byte (HDF5 checks it on every read).
    if (has_checksum(ds))
      throw Error(file_name + ": dataset '" + dataset + "' fails its Fletcher-32 checksum (the file is damaged)");
    throw Error(file_name + ": cannot read dataset '" + dataset + "' (truncated file?)");
  }
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(out[i]))
      throw Error(file_name + ": dataset '" + dataset + "' holds a non-finite value (" +
                  (std::isnan(out[i]) ? "nan" : out[i] > 0 ? "inf" : "-inf") + ") at element " + std::to_string(i));
  return out;
}

void h5_write_floats(hid_t loc, const std::string& dataset, const float* data, const std::vector<size_t>& shape) {
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  H5Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  H5Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl, 1);
  // Every float dataset carries HDF5's Fletcher-32 checksum, which needs a chunked layout: one
  // chunk (the whole tensor; the largest, fc1.weight, is 1.2 MB), checked by HDF5 on every read.
  H5Handle dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  if (!dims.empty() && std::all_of(dims.begin(), dims.end(), [](hsize_t d) { return d > 0; })) {
    H5_CHECK(H5Pset_chunk(dcpl, static_cast<int>(dims.size()), dims.data()), "cannot chunk dataset " + dataset);
    H5_CHECK(H5Pset_fletcher32(dcpl), "cannot add a checksum to dataset " + dataset);
  }
  H5Handle ds(H5Dcreate2(loc, dataset.c_str(), H5T_IEEE_F32LE, space, lcpl, dcpl, H5P_DEFAULT), H5Dclose);
  H5_CHECK(ds.get(), "cannot create dataset " + dataset);
  H5_CHECK(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "cannot write dataset " + dataset);
}

}  // namespace cifar
