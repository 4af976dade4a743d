// The 16-bit wire codecs (src/comm/wire_format.cpp) against values worked out by hand from the
// formats' definitions: bfloat16 = the top 16 bits of a float32; IEEE half = 1-5-10 bits.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "cifar_mpi/comm/wire_format.hpp"

namespace {

using cifar::WireDtype;
using cifar::decode_wire16;
using cifar::encode_wire16;

float from_bits(uint32_t u) { return std::bit_cast<float>(u); }

TEST(WireFormat, Bf16KnownValues) {
  EXPECT_EQ(encode_wire16(1.0f, WireDtype::bf16), 0x3F80);
  EXPECT_EQ(encode_wire16(-2.0f, WireDtype::bf16), 0xC000);
  EXPECT_EQ(encode_wire16(0.0f, WireDtype::bf16), 0x0000);
  EXPECT_EQ(encode_wire16(-0.0f, WireDtype::bf16), 0x8000);
  EXPECT_EQ(encode_wire16(std::numeric_limits<float>::infinity(), WireDtype::bf16), 0x7F80);
  // Round to nearest, ties to even: 1 + 2^-8 is half-way between 1 and 1 + 2^-7 -> 1 (even);
  // 1 + 3 * 2^-8 is half-way between 1 + 2^-7 (odd) and 1 + 2^-6 -> 1 + 2^-6.
  EXPECT_EQ(encode_wire16(from_bits(0x3F808000u), WireDtype::bf16), 0x3F80);
  EXPECT_EQ(encode_wire16(from_bits(0x3F818000u), WireDtype::bf16), 0x3F82);
  EXPECT_EQ(encode_wire16(from_bits(0x3F808001u), WireDtype::bf16), 0x3F81);  // just above half: up
  EXPECT_EQ(encode_wire16(from_bits(0x3F807FFFu), WireDtype::bf16), 0x3F80);  // just below: down
  // The largest float rounds up to infinity, as the format says; a NaN stays a NaN.
  EXPECT_EQ(encode_wire16(std::numeric_limits<float>::max(), WireDtype::bf16), 0x7F80);
  EXPECT_TRUE(std::isnan(decode_wire16(encode_wire16(std::nanf(""), WireDtype::bf16), WireDtype::bf16)));
  EXPECT_TRUE(std::isnan(decode_wire16(encode_wire16(from_bits(0x7FFFFFFFu), WireDtype::bf16), WireDtype::bf16)));
  EXPECT_EQ(decode_wire16(0x4049, WireDtype::bf16), 3.140625f);
}

TEST(WireFormat, Fp16KnownValues) {
  EXPECT_EQ(encode_wire16(1.0f, WireDtype::fp16), 0x3C00);
  EXPECT_EQ(encode_wire16(-2.0f, WireDtype::fp16), 0xC000);
  EXPECT_EQ(encode_wire16(65504.0f, WireDtype::fp16), 0x7BFF);  // the largest half
  EXPECT_EQ(encode_wire16(70000.0f, WireDtype::fp16), 0x7C00);  // beyond it: +inf
  EXPECT_EQ(encode_wire16(std::ldexp(1.0f, -24), WireDtype::fp16), 0x0001);  // the smallest subnormal
  EXPECT_EQ(encode_wire16(std::ldexp(1.0f, -26), WireDtype::fp16), 0x0000);  // below half of it: 0
  // Ties to even: 1 + 2^-11 is half-way between 1 and 1 + 2^-10 -> 1.
  EXPECT_EQ(encode_wire16(1.0f + std::ldexp(1.0f, -11), WireDtype::fp16), 0x3C00);
  EXPECT_EQ(encode_wire16(1.0f + 3 * std::ldexp(1.0f, -11), WireDtype::fp16), 0x3C02);
  EXPECT_TRUE(std::isnan(decode_wire16(encode_wire16(std::nanf(""), WireDtype::fp16), WireDtype::fp16)));
  EXPECT_EQ(decode_wire16(0x3555, WireDtype::fp16), 0.333251953125f);
}

// Every 16-bit pattern that is not a NaN survives decode then encode unchanged, so a value
// already on the wire grid is never moved again (the ring's all-gather relies on it).
TEST(WireFormat, EveryWireValueRoundTrips) {
  for (WireDtype d : {WireDtype::bf16, WireDtype::fp16}) {
    int bad = 0;
    for (uint32_t v = 0; v <= 0xFFFF; ++v) {
      const float f = decode_wire16(static_cast<uint16_t>(v), d);
      if (!std::isnan(f) && encode_wire16(f, d) != v) ++bad;
    }
    EXPECT_EQ(bad, 0) << cifar::to_string(d);
  }
}

// The bulk forms agree with the scalar ones, and the error bound holds: relative error at most
// 2^-8 (bf16, 8 significant bits) or 2^-11 (fp16, 11) in the normal range.
TEST(WireFormat, BulkFormsAndErrorBound) {
  std::vector<float> x;
  for (int i = 0; i < 5000; ++i) x.push_back(static_cast<float>(std::sin(0.731 * i) * std::pow(10.0, (i % 9) - 4)));
  for (WireDtype d : {WireDtype::bf16, WireDtype::fp16}) {
    const double bound = d == WireDtype::bf16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
    std::vector<uint16_t> w(x.size());
    cifar::encode_wire16(x.data(), w.data(), x.size(), d);
    std::vector<float> back(x.size()), rounded = x, acc(x.size(), 1.0f);
    cifar::decode_wire16(w.data(), back.data(), x.size(), d);
    cifar::round_to_wire16(rounded.data(), rounded.size(), d);
    cifar::add_decoded_wire16(acc.data(), w.data(), x.size(), d);
    int bad = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      bad += w[i] != encode_wire16(x[i], d);
      bad += std::bit_cast<uint32_t>(back[i]) != std::bit_cast<uint32_t>(rounded[i]);
      bad += acc[i] != 1.0f + back[i];
      const bool normal = std::fabs(x[i]) >= (d == WireDtype::bf16 ? 1e-37 : 6.2e-5);
      if (normal) bad += std::fabs(back[i] - x[i]) > bound * std::fabs(x[i]);
    }
    EXPECT_EQ(bad, 0) << cifar::to_string(d);
  }
}

TEST(WireFormat, Bytes) {
  EXPECT_EQ(cifar::wire_bytes(WireDtype::fp32), 4u);
  EXPECT_EQ(cifar::wire_bytes(WireDtype::bf16), 2u);
  EXPECT_EQ(cifar::wire_bytes(WireDtype::fp16), 2u);
  EXPECT_THROW(encode_wire16(1.0f, WireDtype::fp32), std::exception);
}

}  // namespace
