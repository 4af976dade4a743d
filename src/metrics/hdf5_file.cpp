#include "cifar_mpi/util/hdf5_file.hpp"

#include <unistd.h>

namespace cifar {

void h5_silence_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

H5Handle h5_open_read(const std::filesystem::path& path) {
  h5_silence_errors();
  if (!std::filesystem::exists(path)) throw Error(path.string() + ": file not found");
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) throw Error(path.string() + ": not a readable HDF5 file (truncated or corrupt?)");
  return {f, H5Fclose};
}

H5Handle h5_create(const std::filesystem::path& path) {
  h5_silence_errors();
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) throw Error(path.string() + ": cannot create HDF5 file (missing or read-only directory?)");
  return {f, H5Fclose};
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
  if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
    throw Error(file_name + ": cannot read dataset '" + dataset + "' (truncated file?)");
  return out;
}

void h5_write_floats(hid_t loc, const std::string& dataset, const float* data, const std::vector<size_t>& shape) {
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  H5Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  H5Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl, 1);
  H5Handle ds(H5Dcreate2(loc, dataset.c_str(), H5T_IEEE_F32LE, space, lcpl, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  H5_CHECK(ds.get(), "cannot create dataset " + dataset);
  H5_CHECK(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "cannot write dataset " + dataset);
}

std::filesystem::path temp_path_for(const std::filesystem::path& path) {
  return path.string() + ".tmp." + std::to_string(::getpid());
}

void commit_temp_file(const std::filesystem::path& tmp, const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw Error(path.string() + ": cannot rename the finished temporary file into place");
  }
}

}  // namespace cifar
