#include "cifar_mpi/app/legacy_spellings.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <optional>

#include "cifar_mpi/app/config.hpp"
#include "cifar_mpi/util/error.hpp"

namespace cifar {

namespace {

// The switches that took a value before the dialect: --eval true, --overlap on, --nesterov true.
// The others were flags already; a word after them was an error then and stays one.
bool took_a_value(const std::string& name) { return name == "eval" || name == "overlap" || name == "nesterov"; }

bool is_switch(const std::string& name) {
  const auto& table = config_options();
  return std::any_of(table.begin(), table.end(), [&](const ConfigOption& o) { return o.is_switch && o.name == name; });
}

// What the old parsers (CLI11's bool, the --overlap transform) read as true or false.
std::optional<bool> boolean_word(std::string w) {
  std::transform(w.begin(), w.end(), w.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (w == "true" || w == "1" || w == "on" || w == "yes") return true;
  if (w == "false" || w == "0" || w == "off" || w == "no") return false;
  return std::nullopt;
}

std::string spelling(const std::string& name, bool on) { return (on ? "--" : "--no-") + name; }

[[noreturn]] void no_value(const std::string& given, const std::string& name) {
  throw Error("invalid configuration: " + given + ": --" + name + " is a switch and takes no value: give --" + name +
              " or --no-" + name);
}

}  // namespace

LegacyRewrite rewrite_legacy_arguments(const std::vector<std::string>& args) {
  LegacyRewrite r;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.rfind("--", 0) != 0) {
      r.args.push_back(a);
      continue;
    }
    std::string name = a.substr(2);
    std::optional<std::string> value;  // --name=VALUE
    if (const auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    const bool negated = name.rfind("no-", 0) == 0 && is_switch(name.substr(3));
    if (negated) name = name.substr(3);
    if (!negated && !is_switch(name)) {
      r.args.push_back(a);
      continue;
    }
    // A word after a switch: there are no positional arguments, so it was meant as its value.
    const bool word_follows = !value && i + 1 < args.size() && args[i + 1].rfind('-', 0) != 0;
    if (!value && !word_follows) {
      r.args.push_back(a);
      continue;
    }
    const std::string given = value ? a : a + " " + args[i + 1];
    if (negated && !value) no_value(given, "no-" + name);
    if (!value && !took_a_value(name)) no_value(given, name);
    const std::optional<bool> b = boolean_word(value ? *value : args[i + 1]);
    if (!b) no_value(given, name);
    const std::string now = spelling(name, *b != negated);
    r.args.push_back(now);
    r.warnings.push_back("'" + given + "' is deprecated: use " + now);
    if (!value) ++i;
  }
  return r;
}

namespace {

// CLI11's TOML reader, with each item whose key or value is an old spelling rewritten.
class LegacyAwareToml : public CLI::ConfigTOML {
 public:
  LegacyAwareToml(std::vector<std::string>* warnings, std::vector<std::string>* keys)
      : warnings_(warnings), keys_(keys) {}

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    std::vector<CLI::ConfigItem> items = CLI::ConfigTOML::from_config(input);
    for (auto& item : items) {
      if (item.parents.empty() && item.inputs.size() == 1) rewrite(item);
      if (keys_) keys_->push_back(item.name);
    }
    return items;
  }

 private:
  void rewrite(CLI::ConfigItem& item) const {
    const std::string& w = item.inputs.front();
    const bool negated = item.name.rfind("no-", 0) == 0 && is_switch(item.name.substr(3));  // no-shuffle = true
    if (!negated && (!is_switch(item.name) || w == "true" || w == "false")) return;
    const std::optional<bool> b = boolean_word(w);
    // CLI11 reads a flag's number as a count: overlap = 2 was on, overlap = -1 off, "maybe" an
    // error without the file's name. Only the old spellings above mean a boolean.
    if (!b) throw TomlError("key '" + item.name + "': '" + w + "' is not true or false");
    const bool bare = w == "true" || w == "false" || std::isdigit(static_cast<unsigned char>(w[0]));  // as TOML writes it
    const std::string was = item.name + " = " + (bare ? w : "\"" + w + "\"");
    if (negated) item.name = item.name.substr(3);
    item.inputs = {*b != negated ? "true" : "false"};
    warnings_->push_back("'" + was + "' is deprecated: use " + item.name + " = " + item.inputs.front());
  }

  std::vector<std::string>* warnings_;
  std::vector<std::string>* keys_;
};

}  // namespace

std::shared_ptr<CLI::Config> legacy_aware_toml(std::vector<std::string>* warnings, std::vector<std::string>* keys) {
  return std::make_shared<LegacyAwareToml>(warnings, keys);
}

}  // namespace cifar
