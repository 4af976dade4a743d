#include "cifar_mpi/app/checkpoint.hpp"

#include <algorithm>
#include <cstring>

#include "cifar_mpi/app/run_checks.hpp"
#include "cifar_mpi/util/hdf5_file.hpp"

namespace cifar {

namespace {

void write_string_attr(hid_t loc, const std::string& name, const std::string& value) {
  H5Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type, std::max<size_t>(1, value.size()));
  H5Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  H5Handle attr(H5Acreate2(loc, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  H5_CHECK(attr.get(), "cannot create attribute " + name);
  H5_CHECK(H5Awrite(attr, type, value.c_str()), "cannot write attribute " + name);
}

std::string read_string_attr(hid_t loc, const std::string& file, const std::string& name) {
  if (H5Aexists(loc, name.c_str()) <= 0) throw Error(file + ": not a cifar_mpi checkpoint (no attribute '" + name + "')");
  H5Handle attr(H5Aopen(loc, name.c_str(), H5P_DEFAULT), H5Aclose);
  H5Handle type(H5Aget_type(attr), H5Tclose);
  std::string value(H5Tget_size(type), '\0');
  H5Handle mem(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(mem, value.size());
  if (H5Aread(attr, mem, value.data()) < 0) throw Error(file + ": cannot read attribute '" + name + "'");
  value.resize(std::strlen(value.c_str()));
  return value;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> resume_identity(const Config& cfg, int world_size,
                                                                 bool hierarchical_ring) {
  const RunShape shape{world_size, hierarchical_ring};
  // With --global-batch (elastic): the global batch instead of the world size and the per-rank
  // batch, and none of the kBitwise rows (threads, all-reduce, buckets, ring layout).
  const bool elastic = cfg.global_batch != 0;
  std::vector<std::pair<std::string, std::string>> id;
  if (!elastic) id.emplace_back("world_size", std::to_string(world_size));
  for (const auto& o : config_options())
    if ((o.use & kIdentity) && !(elastic && (o.use & kBitwise)))
      id.emplace_back(o.key, o.identity ? o.identity(cfg, shape) : o.value(cfg));
  return id;
}

namespace {

// The checkpoint's value of identity key k, for a key the file may lack: keys added after the
// first checkpoints were written read as what those checkpoints ran. "" if neither.
std::string checkpoint_value(hid_t f, const std::string& file, const std::string& k) {
  const auto has = [&](const std::string& key) { return H5Aexists(f, ("config." + key).c_str()) > 0; };
  if (has(k)) return read_string_attr(f, file, "config." + k);
  // Keys added after the first checkpoints were written read as the value those checkpoints ran.
  if (const ConfigOption* option = find_option(k); option && !option->legacy.empty()) return option->legacy;
  if (k == "global_batch" && has("world_size") && has("batch_size"))  // per-rank batch x ranks
    return std::to_string(std::stoull(read_string_attr(f, file, "config.world_size")) *
                          std::stoull(read_string_attr(f, file, "config.batch_size")));
  if (has("global_batch"))  // an elastic checkpoint, resumed with a per-rank batch
    throw Error(file + ": checkpoint is incompatible: it was written with --global-batch " +
                read_string_attr(f, file, "config.global_batch") +
                " (for any number of ranks); resume it with --global-batch " +
                read_string_attr(f, file, "config.global_batch") + ", not a per-rank --batch-size");
  return read_string_attr(f, file, "config." + k);  // throws: not a cifar_mpi checkpoint
}

}  // namespace

void save_checkpoint(const std::filesystem::path& path, const ParamArena& arena, std::span<const float> momentum,
                     const CheckpointPosition& pos, const std::vector<std::pair<std::string, std::string>>& identity,
                     const std::string& reduction_plan, const CheckpointExtras& extras) {
  // The training loop stops on a non-finite weight; this keeps any other caller from saving one.
  for (const auto& [what, values] : {std::pair{"weights", arena.params()}, std::pair{"momentum", momentum}})
    if (const size_t i = find_non_finite(values); i < values.size())
      throw Error("cannot write checkpoint " + path.string() + ": " + what + " of " + tensor_at(arena, i).name +
                  " are not finite");
  const auto tmp = temp_path_for(path);
  try {
    {
      const auto lock = h5_lock();  // written by the checkpoint writer thread (checkpoint_writer.hpp)
      H5Handle f = h5_create(tmp);
      for (const auto& s : arena.specs()) {
        h5_write_floats(f, "weights/" + s.name, arena.params().data() + s.offset, s.shape);
        h5_write_floats(f, "momentum/" + s.name, momentum.data() + s.offset, s.shape);
      }
      for (const auto& s : arena.buffer_specs())  // running statistics: state_dict entries, no momentum
        h5_write_floats(f, "weights/" + s.name, arena.buffers().data() + s.offset, s.shape);
      for (const auto& [name, values] : extras) h5_write_floats(f, name, values.data(), {values.size()});
      write_string_attr(f, "format", "cifar_mpi checkpoint 1");
      write_string_attr(f, "epoch", std::to_string(pos.epoch));
      write_string_attr(f, "step", std::to_string(pos.step));
      write_string_attr(f, "global_step", std::to_string(pos.global_step));
      for (const auto& [k, v] : identity) write_string_attr(f, "config." + k, v);
      if (!reduction_plan.empty()) write_string_attr(f, "reduction_plan", reduction_plan);
      H5_CHECK(H5Fflush(f, H5F_SCOPE_GLOBAL), "cannot flush " + tmp.string());
    }
    commit_temp_file(tmp, path);
  } catch (const Error& e) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw Error("cannot write checkpoint " + path.string() + ": " + e.what());
  }
}

size_t checkpoint_extra_count(const std::filesystem::path& path, const std::string& name) {
  const auto lock = h5_lock();
  H5Handle f = h5_open_read(path);
  if (!h5_exists(f, name)) return 0;
  H5Handle d(H5Dopen2(f, name.c_str(), H5P_DEFAULT), H5Dclose);
  if (d < 0) throw Error(path.string() + ": cannot open dataset '" + name + "'");
  H5Handle space(H5Dget_space(d), H5Sclose);
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  if (n < 0) throw Error(path.string() + ": cannot read the size of dataset '" + name + "'");
  return static_cast<size_t>(n);
}

std::vector<float> read_checkpoint_extra(const std::filesystem::path& path, const std::string& name, size_t count) {
  H5Handle f = h5_open_read(path);
  if (!h5_exists(f, name)) return {};
  return h5_read_floats(f, path.string(), name, {count});
}

std::string read_reduction_plan(const std::filesystem::path& path) {
  try {
    const auto lock = h5_lock();
    H5Handle f = h5_open_read(path);
    if (H5Aexists(f, "reduction_plan") <= 0) return {};
    return read_string_attr(f, path.string(), "reduction_plan");
  } catch (const Error&) {
    return {};
  }
}

CheckpointPosition load_checkpoint(const std::filesystem::path& path, ParamArena& arena, std::span<float> momentum,
                                   const std::vector<std::pair<std::string, std::string>>& identity) {
  const std::string file = path.string();
  const auto lock = h5_lock();
  H5Handle f = h5_open_read(path);
  if (read_string_attr(f, file, "format") != "cifar_mpi checkpoint 1")
    throw Error(file + ": unknown checkpoint format");
  // The model first: a checkpoint of another network is refused for that, whatever else differs.
  auto ordered = identity;
  std::stable_partition(ordered.begin(), ordered.end(), [](const auto& kv) { return kv.first == "model"; });
  for (const auto& [k, want] : ordered) {
    const std::string have = checkpoint_value(f, file, k);
    if (have == want) continue;
    std::string msg = file + ": checkpoint is incompatible: it was written with " + k + " = " + have +
                      ", this run has " + k + " = " + want;
    if (k == "world_size")
      msg += " (with --global-batch " + checkpoint_value(f, file, "global_batch") +
             " it resumes on any number of ranks that divides that batch)";
    throw Error(msg);
  }
  for (const auto& s : arena.specs()) {
    const auto w = h5_read_floats(f, file, "weights/" + s.name, s.shape);
    const auto v = h5_read_floats(f, file, "momentum/" + s.name, s.shape);
    std::copy(w.begin(), w.end(), arena.params().data() + s.offset);
    std::copy(v.begin(), v.end(), momentum.data() + s.offset);
  }
  for (const auto& s : arena.buffer_specs()) {
    const auto b = h5_read_floats(f, file, "weights/" + s.name, s.shape);
    std::copy(b.begin(), b.end(), arena.buffers().data() + s.offset);
  }
  CheckpointPosition pos;
  try {
    pos.epoch = std::stoi(read_string_attr(f, file, "epoch"));
    pos.step = std::stoul(read_string_attr(f, file, "step"));
    pos.global_step = std::stoul(read_string_attr(f, file, "global_step"));
  } catch (const std::logic_error&) {
    throw Error(file + ": corrupt checkpoint position");
  }
  return pos;
}

}  // namespace cifar
