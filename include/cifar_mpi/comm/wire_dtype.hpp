#pragma once
// What gradients travel as (--wire-dtype). Kept apart from wire_format.hpp, which needs MPI, so
// that the configuration (and its fuzzer) can name the types without linking MPI.
#include <cstddef>
#include <string>

namespace cifar {

enum class WireDtype { fp32, bf16, fp16 };

inline std::string to_string(WireDtype d) {
  switch (d) {
    case WireDtype::fp32: return "fp32";
    case WireDtype::bf16: return "bf16";
    case WireDtype::fp16: return "fp16";
  }
  return "?";
}

inline size_t wire_bytes(WireDtype d) { return d == WireDtype::fp32 ? 4 : 2; }  // bytes a value takes

}  // namespace cifar
