// options_reference: docs/reference.md, made from the options table (app/options_text.hpp).
//   options_reference                 prints it
//   options_reference --write FILE    writes it to FILE (cmake --build build --target reference)
//   options_reference --check FILE    exit 1 with one line when FILE differs (ctest docs.reference)
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>

#include "cifar_mpi/app/options_text.hpp"

namespace {

constexpr const char* kRegenerate = "cmake --build build --target reference";

int check(const std::string& path, const std::string& want) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "options_reference: cannot read " << path << ": regenerate it with " << kRegenerate << "\n";
    return 1;
  }
  const std::string have((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (have == want) {
    std::cout << path << " agrees with the options table\n";
    return 0;
  }
  std::istringstream a(have), b(want);
  std::string la, lb;
  int line = 1;
  while (std::getline(a, la) && std::getline(b, lb) && la == lb) ++line;
  std::cerr << "options_reference: " << path << " differs from the options table (from line " << line
            << "): regenerate it with " << kRegenerate << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string text = cifar::options_reference_markdown();
  const std::string mode = argc > 1 ? argv[1] : "";
  if (argc == 1) {
    std::cout << text;
    return 0;
  }
  if (argc == 3 && mode == "--check") return check(argv[2], text);
  if (argc == 3 && mode == "--write") {
    std::ofstream out(argv[2], std::ios::binary);
    if (!(out << text) || !out.flush()) {
      std::cerr << "options_reference: cannot write " << argv[2] << "\n";
      return 1;
    }
    return 0;
  }
  std::cerr << "usage: options_reference [--write FILE | --check FILE]\n";
  return 2;
}
