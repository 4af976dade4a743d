#pragma once
// Thin RAII over HDF5's C API, and H5_CHECK for calls that return a negative id or status on
// failure. HDF5's own error stack printing is switched off (it prints pages to stderr); our
// messages name the file and the dataset instead.
#include <hdf5.h>

#include <mutex>

#include <filesystem>
#include <string>
#include <vector>

#include "cifar_mpi/util/atomic_file.hpp"
#include "cifar_mpi/util/error.hpp"

namespace cifar {

// Owns one HDF5 identifier and closes it with the matching H5?close.
class H5Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Handle() = default;
  H5Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  H5Handle(H5Handle&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = -1; }
  H5Handle& operator=(H5Handle&& o) noexcept {
    std::swap(id_, o.id_);
    std::swap(closer_, o.closer_);
    return *this;
  }
  ~H5Handle() {
    if (id_ >= 0 && closer_) closer_(id_);
  }
  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }

 private:
  hid_t id_ = -1;
  Closer closer_ = nullptr;
};

// Switches HDF5's error printing off on this thread; the system's reason for a failure (e.g.
// "No space left on device") is kept for h5_error_reason().
void h5_silence_errors();
// " (<reason>)" for the last failed HDF5 call on this thread, or "" (and forgets it).
std::string h5_error_reason();

// HDF5 1.10 as packaged is built without thread safety: one thread at a time may call it. The
// checkpoint writer thread (src/app/checkpoint_writer.cpp) writes beside the training loop, so
// every whole-file reader or writer holds this lock from opening the file to closing it.
std::unique_lock<std::mutex> h5_lock();

// Opens an existing file read-only; a missing or unreadable (truncated, not HDF5) file is an
// Error naming the path.
H5Handle h5_open_read(const std::filesystem::path& path);
// Truncates. A failure of the handle's final H5Fclose is remembered for commit_temp_file.
H5Handle h5_create(const std::filesystem::path& path);

// Reads a float dataset whole; its shape must equal `shape`, its Fletcher-32 checksum (if it has
// one: files written before checksums were added have none) must hold, and every value must be
// finite (Error naming file and dataset).
std::vector<float> h5_read_floats(hid_t file, const std::string& file_name, const std::string& dataset,
                                  const std::vector<size_t>& shape);
// Writes a float dataset with a Fletcher-32 checksum (a flipped byte is refused on read).
void h5_write_floats(hid_t loc, const std::string& dataset, const float* data, const std::vector<size_t>& shape);
// The dataset carries a Fletcher-32 checksum.
bool has_checksum(hid_t dataset);
bool h5_exists(hid_t loc, const std::string& path);

// Atomic writing (temporary file, fsync, rename): util/atomic_file.hpp; a failed H5Fclose of a
// temporary file is reported there, so commit_temp_file refuses it.

}  // namespace cifar

#define H5_CHECK(expr, what)                                                                       \
  do {                                                                                             \
    if ((expr) < 0) throw ::cifar::Error(std::string("HDF5: ") + (what) + ::cifar::h5_error_reason()); \
  } while (0)
