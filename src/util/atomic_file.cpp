#include "cifar_mpi/util/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>

#include "cifar_mpi/util/error.hpp"

namespace cifar {

namespace {

// Files whose writer failed to finish them (an HDF5 close whose metadata flush hit a full disk,
// a size limit, an I/O error): name -> reason.
std::mutex g_failed_mutex;
std::map<std::string, std::string> g_failed;

}  // namespace

void mark_temp_file_failed(const std::string& tmp, const std::string& reason) {
  std::lock_guard lock(g_failed_mutex);
  g_failed[tmp] = reason;
}

void forget_temp_file_failure(const std::string& tmp) {
  std::lock_guard lock(g_failed_mutex);
  g_failed.erase(tmp);
}

void check_can_write(const std::string& what, const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  const std::string name = what + " " + path.string();
  if (fs::is_directory(path)) throw Error(name + ": is a folder; name a file");
  const fs::path dir = fs::absolute(path).parent_path();
  if (!fs::is_directory(dir)) throw Error(name + ": folder " + dir.string() + " does not exist");
  const fs::path probe = temp_path_for(path).string() + ".probe";
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw Error(name + ": folder " + dir.string() + " is not writable (" + std::strerror(errno) + ")");
  ::close(fd);
  ::unlink(probe.c_str());
}

std::filesystem::path temp_path_for(const std::filesystem::path& path) {
  return path.string() + ".tmp." + std::to_string(::getpid());
}

void commit_temp_file(const std::filesystem::path& tmp, const std::filesystem::path& path) {
  std::error_code ec;
  const auto give_up = [&](const std::string& what) {
    std::filesystem::remove(tmp, ec);
    throw Error(what);
  };
  {  // a file whose writer failed to finish it is incomplete
    std::unique_lock lock(g_failed_mutex);
    if (const auto it = g_failed.find(tmp.string()); it != g_failed.end()) {
      const std::string reason = it->second.empty() ? "" : " (" + it->second + ")";
      g_failed.erase(it);
      lock.unlock();
      give_up("closing the temporary file " + tmp.string() + " failed" + reason);
    }
  }
  // The data reaches the disk before the name points at it (an error may only show here, e.g. on
  // NFS or a full disk with delayed allocation).
  const int fd = ::open(tmp.c_str(), O_RDONLY);
  if (fd < 0) give_up("cannot reopen the temporary file " + tmp.string() + " (" + std::strerror(errno) + ")");
  const int synced = ::fsync(fd), sync_errno = errno;
  if (::close(fd) != 0 || synced != 0)
    give_up("cannot write the temporary file " + tmp.string() + " to disk (" +
            std::strerror(synced != 0 ? sync_errno : errno) + ")");
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    const std::string reason = ec.message();
    give_up("cannot rename the finished temporary file " + tmp.string() + " into place (" + reason + ")");
  }
}

}  // namespace cifar
