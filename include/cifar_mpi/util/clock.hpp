#pragma once
// Monotonic wall time in seconds, the one clock every timer in the program reads.
#include <chrono>

namespace cifar {

inline double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace cifar
