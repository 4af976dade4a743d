#pragma once
// The boolean spellings from before the one dialect (--name / --no-name, TOML name = true|false),
// still accepted for one release: each is rewritten into the dialect and named in one warning
// line with its new spelling.
//   command line: --eval true|false|1|0|on|off, --overlap on|off|true|false, --nesterov true|false
//                 (also as --name=VALUE), and --name=VALUE for every switch
//   TOML:         overlap = "on"|"off" (any switch given on/off/yes/no/1/0), no-shuffle = true|false
//                 (no-NAME = BOOL for every switch)
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace CLI {
class Config;
}

namespace cifar {

struct LegacyRewrite {
  std::vector<std::string> args;      // the arguments in the dialect
  std::vector<std::string> warnings;  // one line per old spelling, naming the new one
};

// Rewrites argv (without the program name). Throws cifar::Error naming the switch and the word
// for a switch followed by a value that is no boolean (--eval maybe), or by any value where the
// switch never took one (--force yes).
LegacyRewrite rewrite_legacy_arguments(const std::vector<std::string>& args);

// A fault of the TOML file, named by its key (or line) and value: parse_config puts the file's
// name in front of it.
struct TomlError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The configuration file's reader: TOML read by toml++, held to top-level `key = value` (no tables),
// each key an option's and each value one the option takes, checked as on the command line. The
// old values of switches are rewritten into the dialect, each adding one line to *warnings (the
// caller prefixes the file's name). Every fault is a TomlError naming the line or the key and the
// value. With `keys`, the file's keys (as rewritten) are appended to it: what the file set,
// whatever the command line then overrides.
std::shared_ptr<CLI::Config> legacy_aware_toml(std::vector<std::string>* warnings,
                                               std::vector<std::string>* keys = nullptr);

}  // namespace cifar
