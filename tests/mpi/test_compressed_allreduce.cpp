// All-reduce with 16-bit values on the wire (--wire-dtype bf16 | fp16), in both forms the
// gradient reducer uses: the ring with a 16-bit codec (RingAllreduce) and MPI_Allreduce of
// MPI_UINT16_T with the float32-summing user op (MpiAllreduce, create_wire_sum_op).
//
//   ExactWhereTheFormatIsExact   small integers whose every partial sum fits the 16-bit
//       mantissa: both forms give the exact sum, bit for bit (a segment at a wrong offset, a
//       rank missing or counted twice would change it).
//   InexactSumsAgreeAcrossRanks  real-valued inputs: every rank holds the same bits, every value
//       lies on the wire grid (what the all-gather delivers), and each is within the rounding
//       bound of the float32 sum.
//
// Every verdict goes through all_ranks(), so no rank is left in a collective.
#include <gtest/gtest.h>
#include <mpi.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "cifar_mpi/comm/mpi_allreduce.hpp"
#include "cifar_mpi/comm/ring_allreduce.hpp"
#include "cifar_mpi/comm/wire_format.hpp"
#include "mpi/mpi_test_util.hpp"

namespace {

using cifar::WireDtype;
using cifar::testing::all_ranks;
using cifar::testing::bits_equal;
using cifar::testing::same_bits_as_rank0;
using cifar::testing::world_rank;
using cifar::testing::world_size;

std::vector<size_t> test_counts() {
  const size_t n = static_cast<size_t>(world_size());
  return {0, 1, n - 1, n, n + 1, 97, 1000, (size_t{1} << 18) + 3};
}

// Integers 0..60: at N <= 4 every partial sum is <= 240 < 256, exact in bf16 (8 significant
// bits) and fp16 (11).
float small_int(int rank, size_t i) { return static_cast<float>((static_cast<size_t>(rank) * 7 + i * 3) % 61); }

float real_value(int rank, size_t i) {
  return static_cast<float>(std::sin(0.37 * static_cast<double>(i) + rank) * std::pow(10.0, static_cast<int>((static_cast<size_t>(rank) + i) % 4) - 3));
}

enum class Form { kRing, kMpiOp };
const char* name(Form f) { return f == Form::kRing ? "ring" : "MPI_Allreduce+op"; }

std::vector<float> reduce(Form form, std::vector<float> data, WireDtype wire) {
  std::unique_ptr<cifar::Allreduce> algo;
  if (form == Form::kRing)
    algo = std::make_unique<cifar::RingAllreduce>(MPI_COMM_WORLD, wire);
  else
    algo = std::make_unique<cifar::MpiAllreduce>(MPI_COMM_WORLD, wire);  // one process: sends, rounds nothing
  std::vector<float> scratch(algo->scratch_floats(data.size()));
  algo->start(data.data(), data.size(), scratch.data());
  algo->wait();
  return data;
}

TEST(CompressedAllreduce, ExactWhereTheFormatIsExact) {
  const int rank = world_rank(), n = world_size();
  ASSERT_LE(n, 4) << "inputs chosen for N <= 4";
  for (WireDtype wire : {WireDtype::bf16, WireDtype::fp16})
    for (Form form : {Form::kRing, Form::kMpiOp})
      for (size_t count : test_counts()) {
        std::vector<float> input(count), want(count, 0.0f);
        for (size_t i = 0; i < count; ++i) {
          input[i] = small_int(rank, i);
          for (int r = 0; r < n; ++r) want[i] += small_int(r, i);
        }
        const std::vector<float> got = reduce(form, input, wire);
        const bool exact = got.size() == want.size() && (count == 0 || std::memcmp(got.data(), want.data(), count * 4) == 0);
        EXPECT_TRUE(all_ranks(exact)) << name(form) << " " << cifar::to_string(wire) << " count " << count
                                      << ": differs from the exact sum";
      }
}

TEST(CompressedAllreduce, InexactSumsAgreeAcrossRanks) {
  const int rank = world_rank(), n = world_size();
  for (WireDtype wire : {WireDtype::bf16, WireDtype::fp16})
    for (Form form : {Form::kRing, Form::kMpiOp})
      for (size_t count : test_counts()) {
        std::vector<float> input(count);
        for (size_t i = 0; i < count; ++i) input[i] = real_value(rank, i);
        const std::vector<float> got = reduce(form, input, wire);
        // Bound: each of the N inputs and N-1 partial sums is rounded once, each by at most
        // u = 2^-8 (bf16) or 2^-11 (fp16) of its magnitude, itself <= sum |x_r|.
        const double u = wire == WireDtype::bf16 ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
        bool close = true, on_grid = true, moved = false;
        for (size_t i = 0; i < count; ++i) {
          double exact = 0, mag = 0;
          for (int r = 0; r < n; ++r) {
            exact += real_value(r, i);
            mag += std::fabs(real_value(r, i));
          }
          close &= std::fabs(got[i] - exact) <= 2.0 * n * u * mag + 1e-30;
          float g = got[i];
          cifar::round_to_wire16(&g, 1, wire);
          on_grid &= n == 1 || std::bit_cast<uint32_t>(g) == std::bit_cast<uint32_t>(got[i]);
          moved |= std::bit_cast<uint32_t>(got[i]) != std::bit_cast<uint32_t>(static_cast<float>(exact));
        }
        const std::string what = std::string(name(form)) + " " + cifar::to_string(wire) + " count " + std::to_string(count);
        EXPECT_TRUE(all_ranks(close)) << what << ": beyond the rounding bound of the float32 sum";
        EXPECT_TRUE(all_ranks(on_grid)) << what << ": a value is not on the wire grid";
        EXPECT_TRUE(all_ranks(same_bits_as_rank0(got))) << what << ": ranks disagree bitwise";
        if (n > 1 && count >= 97) EXPECT_TRUE(all_ranks(moved)) << what << ": no rounding seen: test is vacuous";
      }
}

}  // namespace
