#include "cifar_mpi/comm/wire_format.hpp"

#include <bit>
#include <cstring>

#include "cifar_mpi/util/error.hpp"
#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

namespace {

// bfloat16 is the top half of a float32. Round to nearest even by adding 0x7FFF plus the lowest
// kept bit before truncating; a NaN is kept quiet (adding could carry it into infinity).
uint16_t float_to_bf16(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu) != 0) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  return static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}
float bf16_to_float(uint16_t v) { return std::bit_cast<float>(static_cast<uint32_t>(v) << 16); }

// IEEE half through the compiler's _Float16 (GCC >= 12 on x86-64: round to nearest even,
// F16C instructions where the target has them).
uint16_t float_to_fp16(float x) { return std::bit_cast<uint16_t>(static_cast<_Float16>(x)); }
float fp16_to_float(uint16_t v) { return static_cast<float>(std::bit_cast<_Float16>(v)); }

template <class F>
void for_dtype(WireDtype d, F&& f) {
  if (d == WireDtype::bf16)
    f(float_to_bf16, bf16_to_float);
  else if (d == WireDtype::fp16)
    f(float_to_fp16, fp16_to_float);
  else
    throw Error("wire format: " + to_string(d) + " is not a 16-bit type");
}

}  // namespace

uint16_t encode_wire16(float x, WireDtype d) {
  uint16_t out = 0;
  for_dtype(d, [&](auto enc, auto) { out = enc(x); });
  return out;
}

float decode_wire16(uint16_t v, WireDtype d) {
  float out = 0;
  for_dtype(d, [&](auto, auto dec) { out = dec(v); });
  return out;
}

void encode_wire16(const float* src, uint16_t* dst, size_t n, WireDtype d) {
  for_dtype(d, [&](auto enc, auto) {
    for (size_t i = 0; i < n; ++i) dst[i] = enc(src[i]);
  });
}

void decode_wire16(const uint16_t* src, float* dst, size_t n, WireDtype d) {
  for_dtype(d, [&](auto, auto dec) {
    for (size_t i = 0; i < n; ++i) dst[i] = dec(src[i]);
  });
}

void add_decoded_wire16(float* __restrict dst, const uint16_t* __restrict src, size_t n, WireDtype d) {
  for_dtype(d, [&](auto, auto dec) {
    for (size_t i = 0; i < n; ++i) dst[i] += dec(src[i]);
  });
}

void round_to_wire16(float* x, size_t n, WireDtype d) {
  for_dtype(d, [&](auto enc, auto dec) {
    for (size_t i = 0; i < n; ++i) x[i] = dec(enc(x[i]));
  });
}

namespace {

template <WireDtype D>
void wire_sum(void* in, void* inout, int* len, MPI_Datatype*) {
  const auto* a = static_cast<const uint16_t*>(in);
  auto* b = static_cast<uint16_t*>(inout);
  for (int i = 0; i < *len; ++i) {
    if constexpr (D == WireDtype::bf16)
      b[i] = float_to_bf16(bf16_to_float(a[i]) + bf16_to_float(b[i]));
    else
      b[i] = float_to_fp16(fp16_to_float(a[i]) + fp16_to_float(b[i]));
  }
}

}  // namespace

MPI_Op create_wire_sum_op(WireDtype d) {
  if (d == WireDtype::fp32) throw Error("create_wire_sum_op: fp32 is not a 16-bit type");
  MPI_Op op = MPI_OP_NULL;
  MPI_CHECK(MPI_Op_create(d == WireDtype::bf16 ? &wire_sum<WireDtype::bf16> : &wire_sum<WireDtype::fp16>,
                          /*commute=*/1, &op));
  return op;
}

}  // namespace cifar
