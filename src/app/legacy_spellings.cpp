#include "cifar_mpi/app/legacy_spellings.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <map>
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

// The configuration file's TOML, read strictly: what the program's options can hold, one
// `key = value` a line at the top level. CLI11's own reader took a table header as an unknown key
// 'train.++', a syntax error (lr = ) as an empty string, an array or a key given twice as "At Most
// 1 required but received 2", and named neither the file nor the line. Every fault here is a
// TomlError naming the line or key and the value (parse_config adds the file's name).
//   values: "basic" and 'literal' strings, true/false, numbers as written (checked by the option
//   itself, so 1e3 for a count says "not a whole number"), and a one-line [list] for --meta only.
//   refused: tables, dotted keys, inline tables, multi-line strings and lists, unknown keys, a key
//   set twice, a value no option takes.

// A `key = value` of the file.
struct TomlEntry {
  size_t line = 0;
  std::string key;                  // as written (no-shuffle stays no-shuffle until rewritten)
  std::vector<std::string> values;  // a string's content, a number's or boolean's text
  std::string written;              // the value as the file has it, for messages
  bool quoted = false;              // a single string
  bool list = false;
};

std::string trim(std::string t) {
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.pop_back();
  return t.substr(std::min(t.find_first_not_of(" \t"), t.size()));
}

[[noreturn]] void toml_fault(size_t line, const std::string& what) {
  throw TomlError("line " + std::to_string(line) + ": " + what);
}

// One line of the file: a key = value, or nothing (blank, a comment).
class TomlLine {
 public:
  TomlLine(const std::string& text, size_t line) : s_(text), line_(line) {}

  std::optional<TomlEntry> entry() {
    skip_space();
    if (at_end_or_comment()) return std::nullopt;
    if (s_[i_] == '[') {
      const size_t comment = s_.find('#', i_);
      fault("tables (" + trim(s_.substr(i_, comment == std::string::npos ? comment : comment - i_)) +
            ") are not supported: keys go at the top level");
    }
    TomlEntry e;
    e.line = line_;
    if (s_[i_] == '"' || s_[i_] == '\'') {
      e.key = string_value();
    } else {
      const size_t first = i_;
      while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '-' || s_[i_] == '_'))
        ++i_;
      e.key = s_.substr(first, i_ - first);
    }
    skip_space();
    if (!e.key.empty() && i_ < s_.size() && s_[i_] == '.') {
      fault("dotted keys (" + trim(s_.substr(0, s_.find('='))) + ") are not supported: keys go at the top level");
    }
    if (e.key.empty() || i_ >= s_.size() || s_[i_] != '=') fault("'" + trim(s_) + "' is not key = value");
    ++i_;
    skip_space();
    const std::string about = "key '" + e.key + "'";
    if (at_end_or_comment()) fault(about + " has no value");
    const size_t first = i_;
    if (s_[i_] == '[') {
      e.list = true;
      ++i_;
      for (;;) {
        skip_space();
        if (i_ >= s_.size() || s_[i_] == '#') fault(about + ": a list must close on its line");
        if (s_[i_] == ']') break;
        e.values.push_back(scalar(about));
        skip_space();
        if (at_end_or_comment()) fault(about + ": a list must close on its line");
        if (s_[i_] == ',') {
          ++i_;
        } else if (s_[i_] != ']') {
          fault(about + ": a list's values are separated by commas");
        }
      }
      ++i_;
    } else {
      e.quoted = s_[i_] == '"' || s_[i_] == '\'';
      e.values.push_back(scalar(about));
    }
    e.written = s_.substr(first, i_ - first);
    skip_space();
    if (!at_end_or_comment()) fault(about + ": '" + s_.substr(i_) + "' after the value");
    return e;
  }

 private:
  [[noreturn]] void fault(const std::string& what) const { toml_fault(line_, what); }

  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  bool at_end_or_comment() const { return i_ >= s_.size() || s_[i_] == '#'; }

  // A string, a boolean or a number (its text; the option checks it).
  std::string scalar(const std::string& about) {
    if (s_[i_] == '"' || s_[i_] == '\'') return string_value();
    if (s_[i_] == '[') fault(about + ": a list within a list is not supported");
    if (s_[i_] == '{') fault(about + ": inline tables are not supported");
    const size_t first = i_;
    while (i_ < s_.size() && s_[i_] != ' ' && s_[i_] != '\t' && s_[i_] != ',' && s_[i_] != ']' && s_[i_] != '#') ++i_;
    std::string word = s_.substr(first, i_ - first);
    if (word == "true" || word == "false") return word;
    const char c = word.empty() ? ' ' : word[0];
    const bool number = std::isdigit(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.' ||
                        word == "inf" || word == "nan";
    if (!number)
      fault(about + ": '" + word + "' is not true, false or a number (a string goes in quotes: \"" + word + "\")");
    std::string text;  // TOML's 1_000 is 1000, +5 is 5, 0x10 is 16
    for (char ch : word)
      if (ch != '_') text += ch;
    if (text[0] == '+') text.erase(0, 1);
    if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'o' || text[1] == 'b')) {
      const int base = text[1] == 'x' ? 16 : text[1] == 'o' ? 8 : 2;
      try {
        size_t used = 0;
        const unsigned long long v = std::stoull(text.substr(2), &used, base);
        if (used == text.size() - 2) return std::to_string(v);
      } catch (const std::exception&) {
      }
      fault(about + ": '" + word + "' is not a number");
    }
    return text;
  }

  std::string string_value() {
    const char quote = s_[i_];
    if (s_.compare(i_, 3, std::string(3, quote)) == 0) fault("multi-line strings are not supported");
    std::string out;
    for (++i_; i_ < s_.size() && s_[i_] != quote; ++i_) {
      if (quote == '\'' || s_[i_] != '\\') {
        out += s_[i_];
        continue;
      }
      if (++i_ >= s_.size()) break;
      switch (s_[i_]) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        default: fault(std::string("'\\") + s_[i_] + "' is not an escape this reader knows (\\\" \\\\ \\n \\t \\r)");
      }
    }
    if (i_ >= s_.size()) fault("a string is not closed on its line");
    ++i_;
    return out;
  }

  const std::string& s_;
  size_t line_;
  size_t i_ = 0;
};

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
    std::vector<TomlEntry> entries;
    std::string text;
    for (size_t line = 1; std::getline(input, text); ++line) {
      if (line == 1 && text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // a UTF-8 byte order mark
      if (!text.empty() && text.back() == '\r') text.pop_back();
      if (auto e = TomlLine(text, line).entry()) entries.push_back(std::move(*e));
    }
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
