#pragma once
// One exception type for every user-facing failure (bad file, bad option, bad weights).
// Its what() is the complete one-line message: it names the file, key or value and the problem.
// main() catches it, prints it once and aborts every rank, so no failure path prints twice.
#include <stdexcept>
#include <string>

namespace cifar {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace cifar
