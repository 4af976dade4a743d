#pragma once
// What a user reads about the options, made from the options table (config_options()) so that
// the two never disagree: the text of --help, and docs/reference.md (written by the
// options_reference program; `cmake --build build --target reference` regenerates it and ctest
// docs.reference fails when it is stale).
#include <string>

namespace cifar {

// The program's exit codes (main.cpp returns them; it checks the two named constants against
// this list at compile time).
struct ExitCodeMeaning {
  int code;
  const char* meaning;
};
inline constexpr ExitCodeMeaning kExitCodes[] = {
    {0, "done"},
    {1, "error: bad input or a failed run (one line on stderr names it)"},
    {75, "stopped by SIGTERM/SIGUSR1 after writing a checkpoint (requeue the job and --resume it)"},
    {76, "a rank stalled past --stall-timeout (the waiting ranks name it)"},
};

// cifar_mpi --help: every option with its value, unit and default, grouped as the table groups
// them, then the exit codes.
std::string options_help_text();

// docs/reference.md, in Markdown.
std::string options_reference_markdown();

}  // namespace cifar
