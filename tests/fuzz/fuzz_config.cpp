// libFuzzer target for the configuration parser (parse_config: CLI11 options + a TOML file).
// The input is split at its first newline: the first line is command-line tokens (separated by
// spaces), the rest is the TOML file passed with --config. cifar::Error is the expected outcome of
// a bad option or file; a crash, a sanitizer report or any other exception is a finding.
// With FUZZ_CONFIG_STRICT=1 in the environment, a configuration that parses must also lie in the
// ranges config.cpp promises (a NaN momentum or an infinite learning rate is then a finding too).
//   tools/checks/run_fuzz.sh builds and runs it (tests/fuzz/corpus/config holds the seeds).
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <optional>
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

// The ranges build_app's validators promise. Written as !(in range) so that NaN fails them.
void check_ranges(const cifar::Config& c) {
  auto require = [](bool ok, const char* what) {
    if (!ok) {
      std::fprintf(stderr, "fuzz_config: parse_config accepted %s\n", what);
      std::abort();
    }
  };
  require(c.epochs >= 1 && c.epochs <= 100000, "epochs outside 1..100000");
  require(c.batch_size >= 1 && c.batch_size <= 65536, "batch-size outside 1..65536");
  require(c.global_batch <= (size_t{1} << 20), "global-batch above 2^20");
  require(std::isfinite(c.lr) && c.lr > 0, "a learning rate that is not finite and > 0");
  require(c.momentum >= 0 && c.momentum <= 0.99999f, "momentum outside [0, 0.99999] (or NaN)");
  require(c.threads >= 1 && c.threads <= 1024, "threads outside 1..1024");
  require(c.max_steps >= 0, "negative max-steps");
  require(c.log_every >= 1 && c.log_every <= 1000000, "log-every outside 1..1000000");
  require(c.bucket_mb >= 1e-6 && c.bucket_mb <= 1e6, "bucket-mb outside [1e-6, 1e6] (or NaN)");
  require(c.allreduce == cifar::AllreduceStrategy::naive || c.allreduce == cifar::AllreduceStrategy::mpi ||
              c.allreduce == cifar::AllreduceStrategy::ring,
          "an allreduce strategy outside naive | mpi | ring");
}

bool g_strict = false;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_dir = fs::temp_directory_path() / ("fuzz_config_" + std::to_string(::getpid()));
  fs::create_directories(g_dir);
  g_toml = g_dir / "fuzz.toml";
  const char* strict = std::getenv("FUZZ_CONFIG_STRICT");
  g_strict = strict && std::string_view(strict) == "1";
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
    const std::optional<cifar::Config> c = cifar::parse_config(static_cast<int>(args.size()), argv.data(), false);
    if (c && g_strict) check_ranges(*c);
  } catch (const cifar::Error&) {
    // Expected: unknown key, bad value, unreadable file.
  } catch (const std::exception& e) {
    finding(e.what());
  }
  return 0;
}
