#pragma once
// The benchmarks answer their command line as cifar_mpi does: --help prints the usage (exit 0); a
// bad option or value prints one line naming it and exits non-zero (CLI11's code).
#include <CLI/CLI.hpp>

#include <charconv>
#include <cstdio>
#include <string>

// After app.parse threw `e`: prints what a user should see (if `speak`: rank 0 of an MPI
// benchmark) and returns the exit code.
inline int bench_cli_exit(const CLI::App& app, const CLI::ParseError& e, const char* program, bool speak = true) {
  if (!speak) return e.get_exit_code();
  if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
  std::fprintf(stderr, "%s: %s\n", program, e.what());
  return e.get_exit_code();
}

// A whole number >= lo, refused in words ("--steps: needs a whole number >= 1, got '0'") where
// CLI11's PositiveNumber prints its range to the largest double.
inline CLI::Validator at_least(long long lo) {
  return CLI::Validator(
      [lo](std::string& text) -> std::string {
        long long v = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec == std::errc() && end == text.data() + text.size() && v >= lo) return {};
        return "needs a whole number >= " + std::to_string(lo) + ", got '" + text + "'";
      },
      "");
}
