// Ring all-reduce, blocking and non-blocking, checked exactly (tolerance 0, memcmp):
// integer-valued inputs that differ by rank and position, so every sum is exact in float and
// known in closed form; compared with MPI_Allreduce(MPI_SUM) on the same data, and for
// bitwise identity across ranks. Every verdict goes through all_ranks() so all ranks agree.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cifar_mpi/comm/ring_allreduce.hpp"
#include "cifar_mpi/util/error.hpp"
#include "mpi/mpi_test_util.hpp"

namespace {

using cifar::testing::all_ranks;
using cifar::testing::bits_equal;
using cifar::testing::same_bits_as_rank0;
using cifar::testing::world_rank;
using cifar::testing::world_size;

// Rank r's value at position i: an integer < 2^17 whose position part also depends on the rank,
// so a segment at a wrong offset, a missing rank or a rank counted twice changes the sum.
constexpr int64_t kPeriod = 4099;  // prime, so it does not line up with segment boundaries
int64_t input_value(int rank, size_t i) {
  return (rank + 1) * 1000 + static_cast<int64_t>((i * static_cast<size_t>(rank + 1) + 7) % kPeriod);
}

std::vector<float> make_input(int rank, size_t count) {
  std::vector<float> v(count);
  for (size_t i = 0; i < count; ++i) v[i] = static_cast<float>(input_value(rank, i));
  return v;
}

// The exact sum, computed in integers: at most N * 2^17, far below 2^24 for any N we run.
std::vector<float> expected_sum(int n, size_t count) {
  std::vector<float> v(count);
  for (size_t i = 0; i < count; ++i) {
    int64_t s = 0;
    for (int r = 0; r < n; ++r) s += input_value(r, i);
    v[i] = static_cast<float>(s);
  }
  return v;
}

// Non-integer inputs, where the order of additions changes the rounding: for bitwise
// identity across ranks and between the two forms.
std::vector<float> make_inexact_input(int rank, size_t count) {
  std::vector<float> v(count);
  for (size_t i = 0; i < count; ++i)
    v[i] = static_cast<float>(std::sin(0.37 * static_cast<double>(i) + rank) * std::pow(10.0, rank % 5) + 0.1 * rank);
  return v;
}

std::vector<float> mpi_allreduce(std::vector<float> v) {
  MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  return v;
}

std::vector<size_t> test_counts() {
  const size_t n = static_cast<size_t>(world_size());
  return {0, 1, n - 1, n, n + 1, 7, 97, 1000, (size_t{1} << 20) + 3};
}

enum class Form { kBlocking, kAsyncPolled, kAsyncWait };

// Runs one form on `data` in place with scratch exactly ring_scratch_floats long (plus a guard
// float that must stay untouched).
bool run_form(Form form, std::vector<float>& data, int tag_base = 0) {
  const size_t scratch_n = cifar::ring_scratch_floats(data.size(), world_size());
  const float guard = -12345.0f;
  std::vector<float> scratch(scratch_n + 1, 0.0f);
  scratch[scratch_n] = guard;
  if (form == Form::kBlocking) {
    cifar::ring_allreduce_sum(data.data(), data.size(), scratch.data(), MPI_COMM_WORLD, tag_base);
  } else {
    cifar::RingAllreduce ar(MPI_COMM_WORLD, cifar::WireDtype::fp32, tag_base);
    ar.start(data.data(), data.size(), scratch.data());
    if (form == Form::kAsyncPolled) {
      while (!ar.progress()) {
      }
    } else {
      ar.wait();
    }
    if (ar.in_flight() || !ar.progress()) return false;
  }
  return scratch[scratch_n] == guard;
}

const char* form_name(Form f) {
  return f == Form::kBlocking ? "blocking" : f == Form::kAsyncPolled ? "async progress()" : "async wait()";
}

void check_exact(Form form) {
  const int rank = world_rank(), n = world_size();
  for (size_t count : test_counts()) {
    const std::vector<float> input = make_input(rank, count);
    std::vector<float> ring = input;
    const bool scratch_ok = run_form(form, ring);
    const bool exact = bits_equal(ring, expected_sum(n, count));
    const bool as_mpi = bits_equal(ring, mpi_allreduce(input));
    const bool same = same_bits_as_rank0(ring);
    EXPECT_TRUE(all_ranks(scratch_ok)) << form_name(form) << " count " << count << ": wrote past scratch";
    EXPECT_TRUE(all_ranks(exact)) << form_name(form) << " count " << count << ": differs from the exact sum";
    EXPECT_TRUE(all_ranks(as_mpi)) << form_name(form) << " count " << count << ": differs from MPI_Allreduce";
    EXPECT_TRUE(all_ranks(same)) << form_name(form) << " count " << count << ": ranks disagree";
  }
}

TEST(RingAllreduce, ScratchIsTheLargestSegment) {
  bool ok = true;
  for (int n = 1; n <= 5; ++n) {
    for (size_t count : {size_t{0}, size_t{1}, size_t{4}, size_t{5}, size_t{6}, size_t{97}}) {
      size_t largest = 0, total = 0, next_offset = 0;
      for (int s = 0; s < n; ++s) {
        const cifar::RingSegment seg = cifar::ring_segment(count, n, s);
        ok &= seg.offset == next_offset;  // segments tile the buffer in order
        next_offset = seg.offset + seg.count;
        largest = std::max(largest, seg.count);
        total += seg.count;
      }
      ok &= total == count && largest == cifar::ring_scratch_floats(count, n);
    }
  }
  EXPECT_TRUE(all_ranks(ok));
}

TEST(RingAllreduce, BlockingIsExact) { check_exact(Form::kBlocking); }
TEST(RingAllreduce, AsyncPolledIsExact) { check_exact(Form::kAsyncPolled); }
TEST(RingAllreduce, AsyncWaitIsExact) { check_exact(Form::kAsyncWait); }

// With inexact inputs the bits depend on the order of additions: every rank must still hold
// the same bits, and the non-blocking form must reproduce the blocking one exactly.
TEST(RingAllreduce, InexactSumsAreBitwiseIdenticalAcrossRanksAndForms) {
  const int rank = world_rank();
  for (size_t count : test_counts()) {
    const std::vector<float> input = make_inexact_input(rank, count);
    std::vector<float> blocking = input, polled = input, waited = input;
    bool ok = run_form(Form::kBlocking, blocking) && run_form(Form::kAsyncPolled, polled, 3) &&
              run_form(Form::kAsyncWait, waited, 5);
    ok = ok && bits_equal(blocking, polled) && bits_equal(blocking, waited);
    // Sanity: the sum is close to MPI's (the order of additions may differ).
    const std::vector<float> mpi = mpi_allreduce(input);
    for (size_t i = 0; i < count && ok; ++i) ok = std::fabs(blocking[i] - mpi[i]) <= 1e-3f * (1.0f + std::fabs(mpi[i]));
    const bool same = same_bits_as_rank0(blocking);
    EXPECT_TRUE(all_ranks(ok)) << "count " << count << ": forms differ or sum is wrong";
    EXPECT_TRUE(all_ranks(same)) << "count " << count << ": ranks disagree bitwise";
  }
}

// Two buckets in flight at once, started in opposite orders on odd and even ranks and
// progressed alternately: only the tag bases keep their messages apart.
TEST(RingAllreduce, TwoInFlightWithDistinctTagBases) {
  const int rank = world_rank(), n = world_size();
  const size_t count_a = 1000 + 3, count_b = (size_t{1} << 18) + 1;
  std::vector<float> a = make_input(rank, count_a), b = make_input((rank + 1) % n, count_b);
  std::vector<float> scratch_a(cifar::ring_scratch_floats(count_a, n));
  std::vector<float> scratch_b(cifar::ring_scratch_floats(count_b, n));
  cifar::RingAllreduce ar_a(MPI_COMM_WORLD, cifar::WireDtype::fp32, 1), ar_b(MPI_COMM_WORLD, cifar::WireDtype::fp32, 2);
  if (rank % 2 == 0) {
    ar_a.start(a.data(), count_a, scratch_a.data());
    ar_b.start(b.data(), count_b, scratch_b.data());
  } else {
    ar_b.start(b.data(), count_b, scratch_b.data());
    ar_a.start(a.data(), count_a, scratch_a.data());
  }
  bool done_a = false, done_b = false;
  while (!(done_a && done_b)) {
    if (rank % 2 == 0) {
      done_b = ar_b.progress();
      done_a = ar_a.progress();
    } else {
      done_a = ar_a.progress();
      done_b = ar_b.progress();
    }
  }
  // b's inputs are a rotation of the ranks' inputs, so its sum is the same closed form.
  const bool ok = bits_equal(a, expected_sum(n, count_a)) && bits_equal(b, expected_sum(n, count_b));
  EXPECT_TRUE(all_ranks(ok));
}

// The blocking form with a different tag base runs while an async one is in flight.
TEST(RingAllreduce, BlockingWhileAsyncInFlight) {
  const int rank = world_rank(), n = world_size();
  const size_t count = 4097;
  std::vector<float> a = make_input(rank, count), b = make_input(rank, count + 5);
  std::vector<float> scratch_a(cifar::ring_scratch_floats(count, n)), scratch_b(cifar::ring_scratch_floats(count + 5, n));
  cifar::RingAllreduce ar(MPI_COMM_WORLD, cifar::WireDtype::fp32, 7);
  ar.start(a.data(), count, scratch_a.data());
  cifar::ring_allreduce_sum(b.data(), b.size(), scratch_b.data(), MPI_COMM_WORLD, 8);
  ar.wait();
  const bool ok = bits_equal(a, expected_sum(n, count)) && bits_equal(b, expected_sum(n, count + 5));
  EXPECT_TRUE(all_ranks(ok));
}

TEST(RingAllreduce, RejectsMisuse) {
  const int n = world_size();
  std::vector<float> data = make_input(world_rank(), 10), scratch(cifar::ring_scratch_floats(10, n));
  // A tag base whose tags exceed MPI_TAG_UB (at N = 1 nothing is sent, so nothing to check).
  bool ok = true;
  if (n > 1) {
    try {
      cifar::ring_allreduce_sum(data.data(), data.size(), scratch.data(), MPI_COMM_WORLD, INT32_MAX / 2);
      ok = false;
    } catch (const cifar::Error&) {
    }
    try {
      cifar::ring_allreduce_sum(data.data(), data.size(), scratch.data(), MPI_COMM_WORLD, -1);
      ok = false;
    } catch (const cifar::Error&) {
    }
    // Starting again while in flight.
    cifar::RingAllreduce ar(MPI_COMM_WORLD);
    ar.start(data.data(), data.size(), scratch.data());
    try {
      ar.start(data.data(), data.size(), scratch.data());
      ok = false;
    } catch (const cifar::Error&) {
    }
    ar.wait();
    ok = ok && bits_equal(data, expected_sum(n, 10));
  }
  EXPECT_TRUE(all_ranks(ok));
}

}  // namespace
