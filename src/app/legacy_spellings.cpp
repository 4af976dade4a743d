#include "cifar_mpi/app/legacy_spellings.hpp"

#include <CLI/CLI.hpp>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <iterator>
#include <map>
#include <optional>
#include <sstream>

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

// `shown` is the switch as given (name or no-name); the pair offered is always --name / --no-name.
[[noreturn]] void no_value(const std::string& given, const std::string& name, const std::string& shown = "") {
  throw Error("invalid configuration: " + given + ": --" + (shown.empty() ? name : shown) +
              " is a switch and takes no value: give --" + name + " or --no-" + name);
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
    if (negated && !value) no_value(given, name, "no-" + name);
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

// The configuration file's TOML, read by toml++ and then held to what the program's options can
// hold: `key = value` at the top level. CLI11's own reader took a table header as an unknown key
// 'train.++', a syntax error (lr = ) as an empty string, an array or a key given twice as "At Most
// 1 required but received 2", and named neither the file nor the line. Every fault here is a
// TomlError naming the line or key and the value (parse_config adds the file's name).
//   values: strings, true/false, numbers (an integer as its decimal, a float as written, so that the
//   option's own check says 1e3 for a count is "not a whole number"), and a [list] for --meta only.
//   refused: TOML that toml++ refuses (with its line and words), tables, dotted keys, inline tables,
//   lists of other keys, unknown keys, a key set twice, a value no option takes.

// A `key = value` of the file.
struct TomlEntry {
  size_t line = 0;
  std::string key;                  // as written (no-shuffle stays no-shuffle until rewritten)
  std::vector<std::string> values;  // a string's content, a number's or boolean's text
  std::string written;              // the value as the file has it, for messages
  bool list = false;
  const toml::node* node = nullptr;  // toml++'s
};

std::string trim(std::string t) {
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.pop_back();
  return t.substr(std::min(t.find_first_not_of(" \t"), t.size()));
}

[[noreturn]] void toml_fault(size_t line, const std::string& what) {
  throw TomlError("line " + std::to_string(line) + ": " + what);
}

// The file's lines, for quoting them in messages (toml++ skips a byte order mark and a \r).
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text.rfind("\xEF\xBB\xBF", 0) == 0 ? text.substr(3) : text);
  for (std::string l; std::getline(in, l);) {
    if (!l.empty() && l.back() == '\r') l.pop_back();
    lines.push_back(std::move(l));
  }
  return lines;
}

// A node's text as the file has it: toml++'s region on its line (its columns count UTF-8
// characters), or toml++'s own rendering of a value over several lines.
std::string written(const toml::node& n, const std::vector<std::string>& lines) {
  const toml::source_region& r = n.source();
  if (r.begin.line != r.end.line || r.begin.line == 0 || r.begin.line > lines.size() || r.end.column < r.begin.column) {
    std::ostringstream out;
    n.visit([&](const auto& v) { out << v; });
    return out.str();
  }
  const std::string& l = lines[r.begin.line - 1];
  auto byte = [&](size_t column) {  // of the 1-based character `column`
    size_t i = 0;
    for (size_t c = 1; c < column && i < l.size(); ++c)
      do ++i;
      while (i < l.size() && (static_cast<unsigned char>(l[i]) & 0xC0) == 0x80);
    return i;
  };
  const size_t first = byte(r.begin.column);
  return l.substr(first, byte(r.end.column) - first);
}

// One value as CLI11 takes it from the command line.
std::string value_text(const toml::node& n, const std::string& about, size_t line,
                       const std::vector<std::string>& lines) {
  if (const auto* s = n.as_string()) return s->get();
  if (const auto* b = n.as_boolean()) return b->get() ? "true" : "false";
  if (const auto* i = n.as_integer()) return std::to_string(i->get());  // 0x10 and 1_000 too
  if (n.is_array()) toml_fault(line, about + ": a list within a list is not supported");
  if (n.is_table()) toml_fault(line, about + ": inline tables are not supported");
  // A float (or a date) as written, without TOML's _ and + (the option checks it; 1e3 stays 1e3).
  std::string text;
  for (char ch : written(n, lines))
    if (ch != '_') text += ch;
  if (!text.empty() && text[0] == '+') text.erase(0, 1);
  return text;
}

// toml++ refuses a key set twice at its second line: the first is found by reading the file up to
// that line, the key by reading that line alone.
std::optional<std::string> set_again(const std::vector<std::string>& lines, size_t line) {
  if (line < 2 || line > lines.size()) return std::nullopt;
  std::string before;
  for (size_t i = 0; i + 1 < line; ++i) before += lines[i] + "\n";
  try {
    const toml::table prefix = toml::parse(std::string_view(before));
    const toml::table here = toml::parse(std::string_view(lines[line - 1]));
    for (auto&& [key, value] : here)
      if (const auto first = prefix.find(key.str()); first != prefix.end())
        return "key '" + std::string(key.str()) + "' set again (first on line " +
               std::to_string(first->first.source().begin.line) + ")";
  } catch (const toml::parse_error&) {
  }
  return std::nullopt;
}

// The file's TOML as toml++ reads it, or a TomlError: its line, the line's text and toml++'s words.
toml::table parse_toml(const std::string& text, const std::vector<std::string>& lines) {
  try {
    return toml::parse(std::string_view(text));
  } catch (const toml::parse_error& e) {
    const size_t line = e.source().begin.line;
    std::string why(e.description());
    if (why.find("cannot redefine") != std::string::npos)
      if (auto again = set_again(lines, line)) toml_fault(line, *again);
    for (auto& ch : why)
      if (ch == '\n' || ch == '\r') ch = ' ';
    if (!why.empty()) why[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(why[0])));
    const std::string quoted = line >= 1 && line <= lines.size() ? "'" + trim(lines[line - 1]) + "': " : "";
    if (line == 0) throw TomlError(why);
    toml_fault(line, quoted + why);
  }
}

// The file's top-level keys in the file's order (toml++ keeps them sorted), each checked for a
// shape an option can hold.
std::vector<TomlEntry> entries_of(const toml::table& root, const std::vector<std::string>& lines) {
  std::vector<TomlEntry> entries;
  for (auto&& [key, node] : root) {
    TomlEntry e;
    e.line = key.source().begin.line;
    e.key = std::string(key.str());
    e.node = &node;
    entries.push_back(std::move(e));
  }
  std::sort(entries.begin(), entries.end(), [](const TomlEntry& a, const TomlEntry& b) { return a.line < b.line; });
  for (auto& e : entries) {
    const toml::node& node = *e.node;
    const std::string about = "key '" + e.key + "'";
    const std::string text = e.line >= 1 && e.line <= lines.size() ? lines[e.line - 1] : std::string();
    const bool header = trim(text).rfind('[', 0) == 0;  // [table] or [[table]], not key = [list]
    if (header)
      toml_fault(e.line, "tables (" + trim(text.substr(0, text.find('#'))) + ") are not supported: keys go at the top level");
    if (node.is_table() && !node.as_table()->is_inline())
      toml_fault(e.line, "dotted keys (" + trim(text.substr(0, text.find('='))) +
                             ") are not supported: keys go at the top level");
    if (node.is_table()) toml_fault(e.line, about + ": inline tables are not supported");
    e.written = written(node, lines);
    if (const auto* list = node.as_array()) {
      e.list = true;
      for (const auto& v : *list) e.values.push_back(value_text(v, about, e.line, lines));
    } else {
      e.values.push_back(value_text(node, about, e.line, lines));
    }
  }
  return entries;
}

const ConfigOption* option_named(const std::string& name) {
  for (const auto& o : config_options())
    if (o.name == name) return &o;
  return nullptr;
}

// "" if the option takes `value`, else why not: the option's own check (as on the command line),
// without CLI11's "--name: " in front.
std::string refusal(const ConfigOption& o, const std::string& value) {
  Config scratch;
  CLI::App app;
  o.add_to_cli(app, scratch);
  try {
    // "--name=VALUE" as a value may begin with '-'; but CLI11 reads "--name=" as no value at all.
    if (value.empty())
      app.parse(std::vector<std::string>{value, "--" + o.name});  // CLI11 pops from the back
    else
      app.parse(std::vector<std::string>{"--" + o.name + "=" + value});
  } catch (const CLI::ParseError& e) {
    std::string why = e.what();
    const std::string prefix = "--" + o.name + ": ";
    if (why.rfind(prefix, 0) == 0) why.erase(0, prefix.size());
    for (auto& ch : why)
      if (ch == '\n' || ch == '\r') ch = ' ';
    return why.empty() ? "'" + value + "' is refused" : why;
  }
  return {};
}

class LegacyAwareToml : public CLI::ConfigTOML {
 public:
  LegacyAwareToml(std::vector<std::string>* warnings, std::vector<std::string>* keys)
      : warnings_(warnings), keys_(keys) {}

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    const std::string text{std::istreambuf_iterator<char>(input), std::istreambuf_iterator<char>()};
    const std::vector<std::string> lines = lines_of(text);
    std::vector<TomlEntry> entries = entries_of(parse_toml(text, lines), lines);
    std::vector<CLI::ConfigItem> items;
    std::map<std::string, size_t> first_line;  // by key, once rewritten (no-shuffle is shuffle)
    for (auto& e : entries) {
      const std::string about = "key '" + e.key + "'";
      const bool negated = e.key.rfind("no-", 0) == 0 && is_switch(e.key.substr(3));
      const ConfigOption* o = option_named(negated ? e.key.substr(3) : e.key);
      if (!o) toml_fault(e.line, "unknown key '" + e.key + "'");
      if (e.list && o->name != "meta") toml_fault(e.line, about + " takes one value, not a list (" + e.written + ")");
      if (o->is_switch) rewrite(e, negated);
      const auto [seen, added] = first_line.emplace(o->name, e.line);
      if (!added)
        toml_fault(e.line, about + (e.key == o->name ? " set" : " sets '" + o->name + "'") + " again (first on line " +
                               std::to_string(seen->second) + ")");
      if (!o->is_switch)
        for (const auto& v : e.values)
          if (const std::string why = refusal(*o, v); !why.empty()) toml_fault(e.line, about + ": " + why);
      if (e.values.empty()) continue;  // meta = []
      CLI::ConfigItem item;
      item.name = o->name;
      item.inputs = e.values;
      items.push_back(std::move(item));
      if (keys_) keys_->push_back(o->name);
    }
    return items;
  }

 private:
  // A switch's value: true or false, or an old spelling rewritten with a warning.
  void rewrite(TomlEntry& e, bool negated) const {
    const std::string& w = e.values.front();
    if (!negated && (w == "true" || w == "false")) return;
    const std::optional<bool> b = boolean_word(w);
    // CLI11 reads a flag's number as a count: overlap = 2 was on, overlap = -1 off. Only the old
    // spellings above mean a boolean.
    if (!b) toml_fault(e.line, "key '" + e.key + "': '" + w + "' is not true or false");
    const std::string name = negated ? e.key.substr(3) : e.key;
    const std::string now = *b != negated ? "true" : "false";
    warnings_->push_back("'" + e.key + " = " + e.written + "' is deprecated: use " + name + " = " + now);
    e.values = {now};
  }

  std::vector<std::string>* warnings_;
  std::vector<std::string>* keys_;
};

}  // namespace

std::shared_ptr<CLI::Config> legacy_aware_toml(std::vector<std::string>* warnings, std::vector<std::string>* keys) {
  return std::make_shared<LegacyAwareToml>(warnings, keys);
}

}  // namespace cifar
