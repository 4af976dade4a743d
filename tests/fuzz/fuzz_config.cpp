// libFuzzer target for the configuration parser (parse_config: CLI11 options + a TOML file).
// The input is split at its first newline: the first line is command-line tokens (separated by
// spaces), the rest is the TOML file passed with --config. cifar::Error is the expected outcome of
// a bad option or file; a crash, a sanitizer report or any other exception is a finding.
//   tools/run_fuzz.sh builds and runs it (tests/fuzz/corpus/config holds the seeds).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "cifar_mpi/app/config.hpp"
#include "cifar_mpi/util/error.hpp"

namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxTokens = 16;

// A directory per fuzzing process (libFuzzer's -jobs/-workers run several), removed at exit. The
// working directory stays put (libFuzzer resolves corpus and artifact paths against it): --config is
// always given, so a config/default.toml where the fuzzer runs is never read.
fs::path g_dir;
fs::path g_toml;

void write_file(const fs::path& path, std::string_view text) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();  // the harness itself failed; not a finding in the parser
  if (!text.empty() && std::fwrite(text.data(), 1, text.size(), f) != text.size()) std::abort();
  std::fclose(f);
}

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "fuzz_config: unexpected exception (not cifar::Error): %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_dir = fs::temp_directory_path() / ("fuzz_config_" + std::to_string(::getpid()));
  fs::create_directories(g_dir);
  g_toml = g_dir / "fuzz.toml";
  std::atexit([] {
    std::error_code ignored;
    fs::remove_all(g_dir, ignored);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t newline = input.find('\n');
  const std::string_view line = input.substr(0, newline);
  const std::string_view toml = newline == std::string_view::npos ? std::string_view{} : input.substr(newline + 1);
  write_file(g_toml, toml);

  // argv: program name, --config FILE, then the first line's tokens (empty tokens dropped; NUL
  // bytes end a C string early, as they would on a real command line).
  std::vector<std::string> args{"cifar_mpi", "--config", g_toml.string()};
  size_t start = 0;
  while (start <= line.size() && args.size() < 3 + kMaxTokens) {
    size_t end = line.find(' ', start);
    if (end == std::string_view::npos) end = line.size();
    if (end > start) args.emplace_back(line.substr(start, end - start));
    start = end + 1;
  }
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  try {
    (void)cifar::parse_config(static_cast<int>(args.size()), argv.data(), /*print_help=*/false);
  } catch (const cifar::Error&) {
    // Expected: unknown key, bad value, unreadable file.
  } catch (const std::exception& e) {
    finding(e.what());
  }
  return 0;
}
