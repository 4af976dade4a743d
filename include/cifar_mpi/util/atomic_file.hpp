#pragma once
// Writing a file so that a crash leaves the previous file or none, never a half-written one:
// write `temp_path_for(path)`, then `commit_temp_file(tmp, path)` fsyncs it and renames it over
// `path`. Used for every output the program leaves behind (metrics, checkpoints, weights, trace).
#include <filesystem>
#include <string>

namespace cifar {

// "<path>.tmp.<pid>": beside the final file (so the rename stays within one file system).
std::filesystem::path temp_path_for(const std::filesystem::path& path);

// fsyncs `tmp` and renames it over `path`. If that fails, or a writer marked `tmp` as failed,
// removes `tmp` and throws cifar::Error naming it (path untouched).
void commit_temp_file(const std::filesystem::path& tmp, const std::filesystem::path& path);

// Before hours of work, not after: throws cifar::Error "<what> <path>: <reason>" unless `path`
// could be written the way commit_temp_file writes it: not a folder, its folder exists, and a
// file can be created there (tried and removed at once: access() passes root on file systems
// that refuse every new file, such as /sys).
void check_can_write(const std::string& what, const std::filesystem::path& path);

// A writer that cannot throw where it fails (a destructor closing the file) records the failure
// here; the next commit_temp_file of that file refuses it with `reason`.
void mark_temp_file_failed(const std::string& tmp, const std::string& reason);
// A new writer of `tmp` starts clean (an earlier writer that gave up is not its failure).
void forget_temp_file_failure(const std::string& tmp);

}  // namespace cifar
