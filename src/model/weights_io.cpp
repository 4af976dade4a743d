#include "cifar_mpi/model/weights_io.hpp"

#include <algorithm>

#include "cifar_mpi/util/hdf5_file.hpp"

namespace cifar {

void save_weights(const ParamArena& arena, const std::filesystem::path& path) {
  const auto tmp = temp_path_for(path);
  try {
    {
      const auto lock = h5_lock();
      H5Handle f = h5_create(tmp);
      for (const auto& s : arena.specs())
        h5_write_floats(f, s.name, arena.params().data() + s.offset, s.shape);
      for (const auto& s : arena.buffer_specs())
        h5_write_floats(f, s.name, arena.buffers().data() + s.offset, s.shape);
      H5_CHECK(H5Fflush(f, H5F_SCOPE_GLOBAL), "cannot flush " + tmp.string());
    }
    commit_temp_file(tmp, path);
  } catch (const Error& e) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw Error("cannot write weights to " + path.string() + ": " + e.what());
  }
}

void load_weights(ParamArena& arena, const std::filesystem::path& path) {
  const auto lock = h5_lock();
  H5Handle f = h5_open_read(path);
  for (const auto& s : arena.specs()) {
    const auto values = h5_read_floats(f, path.string(), s.name, s.shape);
    std::copy(values.begin(), values.end(), arena.params().data() + s.offset);
  }
  for (const auto& s : arena.buffer_specs()) {  // (PyTorch's num_batches_tracked is not read)
    const auto values = h5_read_floats(f, path.string(), s.name, s.shape);
    std::copy(values.begin(), values.end(), arena.buffers().data() + s.offset);
  }
}

}  // namespace cifar
