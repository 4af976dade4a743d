#include "cifar_mpi/app/options_text.hpp"

#include <algorithm>
#include <cctype>
#include <sstream>
#include <string>
#include <vector>

#include "cifar_mpi/app/config.hpp"

namespace cifar {

namespace {

// One line of the lists: how it is written, what it does, its unit, default and TOML key.
struct Entry {
  std::string spelling, meaning, unit, default_text, toml;
};

// The options outside the table: they are not keys of a configuration.
const std::vector<Entry>& general_entries() {
  static const std::vector<Entry> entries = {
      {"-h, --help", "print this help and exit", "", "", ""},
      {"--version", "print the version, git commit, oneDNN version and the ISA it runs, and the MPI library; exit",
       "", "", ""},
      {"--config FILE",
       "TOML file of defaults (the default is read only when present): every option below is also its key; the "
       "command line wins",
       "", "config/default.toml", ""},
  };
  return entries;
}

Entry entry(const ConfigOption& o) {
  Entry e;
  e.spelling = o.is_switch ? "--" + o.name + ", --no-" + o.name
                           : "--" + o.name + (o.placeholder.empty() ? "" : " " + o.placeholder);
  e.meaning = o.help;
  e.unit = o.unit;
  e.default_text = o.default_text;
  e.toml = o.is_switch ? o.name + " = true|false" : o.name;
  return e;
}

// The groups in the table's order, each with its entries.
std::vector<std::pair<std::string, std::vector<Entry>>> grouped_entries() {
  std::vector<std::pair<std::string, std::vector<Entry>>> groups{{"General", general_entries()}};
  for (const auto& o : config_options()) {
    if (groups.back().first != o.group) groups.push_back({o.group, {}});
    groups.back().second.push_back(entry(o));
  }
  return groups;
}

constexpr const char* kSummary = "cifar_mpi: synchronous data-parallel training of a CNN on CIFAR-10 (MPI + oneDNN)";

// --help's two columns: the spelling, then the text wrapped to kWidth (the spelling on a line of
// its own when it reaches into the second column). The bracket of unit and default is not split.
void put_entry(std::string& out, const std::string& left, const std::string& right, const std::string& bracket = "",
               size_t column = 30) {
  constexpr size_t kIndent = 2, kWidth = 100;
  std::string line = std::string(kIndent, ' ') + left;
  if (line.size() + 2 > column) {
    out += line + "\n";
    line.clear();
  }
  line.resize(column, ' ');
  std::vector<std::string> words;
  std::istringstream in(right);
  for (std::string w; in >> w;) words.push_back(w);
  if (!bracket.empty()) words.push_back(bracket);
  bool first = true;
  for (const auto& w : words) {
    if (!first && line.size() + 1 + w.size() > kWidth) {
      out += line + "\n";
      line = std::string(column, ' ');
      first = true;
    }
    line += (first ? "" : " ") + w;
    first = false;
  }
  out += line + "\n";
}

std::string escape_pipes(const std::string& text) {
  std::string out;
  for (char ch : text) out += ch == '|' ? std::string("\\|") : std::string(1, ch);
  return out;
}

// A cell of a Markdown table: what reads as code (options, file names, formulas) in backticks, and
// every '|' escaped (a table's column separator even inside backticks).
std::string markdown_cell(const std::string& text) {
  // An option, a name with '_', a formula; not a lone '>' nor words joined by '/' (oneDNN/OpenMP).
  const auto is_code = [](const std::string& w) {
    const bool alnum = std::any_of(w.begin(), w.end(), [](unsigned char ch) { return std::isalnum(ch); });
    const bool digit = std::any_of(w.begin(), w.end(), [](unsigned char ch) { return std::isdigit(ch); });
    return alnum && (w.rfind("--", 0) == 0 || w.find_first_of("_*<>={}") != std::string::npos ||
                     (digit && w.find('/') != std::string::npos));
  };
  std::string out;
  std::istringstream words(text);
  for (std::string w; words >> w;) {
    // Punctuation around a word stays outside its backticks; a bracket only if it is unmatched.
    const auto count = [&w](char ch) { return std::count(w.begin(), w.end(), ch); };
    std::string before, after;
    while (!w.empty() && (w.front() == '"' || (w.front() == '(' && count('(') > count(')')))) {
      before += w.front();
      w.erase(0, 1);
    }
    while (!w.empty() && (std::string(",;:.\"").find(w.back()) != std::string::npos ||
                          (w.back() == ')' && count(')') > count('(')))) {
      after.insert(after.begin(), w.back());
      w.pop_back();
    }
    if (!out.empty()) out += ' ';
    out += before + (is_code(w) ? "`" + w + "`" : w) + after;
  }
  return escape_pipes(out);
}

std::string code(const std::string& text) {
  if (text.empty()) return text;
  std::string out(1, '`');
  out += escape_pipes(text);
  out += '`';
  return out;
}

// "`--shuffle`, `--no-shuffle`" and "`--batch-size B`".
std::string markdown_spelling(const std::string& spelling) {
  std::string out;
  std::istringstream parts(spelling);
  for (std::string p; std::getline(parts, p, ',');) {
    if (!p.empty() && p.front() == ' ') p.erase(0, 1);
    out += (out.empty() ? "" : ", ") + code(p);
  }
  return out;
}

}  // namespace

std::string options_help_text() {
  std::string out = std::string(kSummary) +
                    "\n\nUsage: [mpirun -np N] cifar_mpi [OPTIONS]\n\n"
                    "Every option is also a key of a TOML file (--config FILE; config/default.toml is read when\n"
                    "present); the command line wins. A switch is a pair: --name turns it on, --no-name off (the last\n"
                    "one given wins); in a TOML file, name = true|false. An option given twice takes the last value\n"
                    "(--meta adds each).\n";
  for (const auto& [group, entries] : grouped_entries()) {
    out += "\n" + group + ":\n";
    for (const auto& e : entries) {
      std::string bracket;
      if (!e.unit.empty()) bracket += e.unit;
      if (!e.default_text.empty()) bracket += (bracket.empty() ? "" : "; ") + std::string("default ") + e.default_text;
      put_entry(out, e.spelling, e.meaning, bracket.empty() ? "" : "[" + bracket + "]");
    }
  }
  out += "\nExit codes:\n";
  for (const auto& [code, meaning] : kExitCodes) put_entry(out, std::to_string(code), meaning, "", 8);
  return out;
}

std::string options_reference_markdown() {
  std::string out =
      "# cifar_mpi options reference\n\n"
      "<!-- Generated from the options table (src/app/config.cpp) by the options_reference program: do not edit.\n"
      "     Regenerate with: cmake --build build --target reference -->\n\n"
      "This page is generated from the program's options table, as `cifar_mpi --help` is, so the two agree.\n"
      "Regenerate it with `cmake --build build --target reference`; the test `docs.reference` fails when it is\n"
      "out of date.\n\n"
      "- **Configuration file.** Every option is also a key of a TOML file given with `--config FILE`\n"
      "  (`config/default.toml` is read when present in the working directory). The command line wins over the\n"
      "  file. The file's keys are at the top level (no `[tables]`), each set once.\n"
      "- **Switches.** A switch is a pair of flags: `--name` turns it on, `--no-name` off; the last one given\n"
      "  wins. In a TOML file it is `name = true` or `name = false`. The spellings from before this dialect\n"
      "  (`--eval false`, `--eval=0`, `--overlap on`, `--nesterov true`; in TOML `overlap = \"on\"`,\n"
      "  `no-shuffle = true`) are still accepted for one release, each with a warning naming its new spelling.\n"
      "- **Repeated options.** An option given twice on the command line takes the last value, as a switch\n"
      "  does (`--meta` adds each label).\n"
      "- **Batch size.** `--batch-size` (per rank) and `--global-batch` (split across the ranks) cannot both be\n"
      "  given on the command line, nor both set in a configuration file; the one on the command line replaces\n"
      "  the file's (`--batch-size` its `global-batch`, `--global-batch` its `batch-size`).\n"
      "- **Errors.** Bad input ends the program with one line on stderr naming the option, key, file or value.\n";
  for (const auto& [group, entries] : grouped_entries()) {
    out += "\n## " + group + "\n\n| Option | Default | Unit | TOML key | Meaning |\n|---|---|---|---|---|\n";
    for (const auto& e : entries)
      out += "| " + markdown_spelling(e.spelling) + " | " + code(e.default_text) + " | " + markdown_cell(e.unit) +
             " | " + code(e.toml) + " | " + markdown_cell(e.meaning) + " |\n";
  }
  out += "\n## Exit codes\n\n| Code | Meaning |\n|---|---|\n";
  for (const auto& [code, meaning] : kExitCodes) out += "| " + std::to_string(code) + " | " + markdown_cell(meaning) + " |\n";
  return out;
}

}  // namespace cifar
