// The recursive-halving/doubling all-reduce (rhd_allreduce.hpp) at any N, not only the table
// test's N <= 4: run by ctest at N = 1..4 and by hand oversubscribed (mpirun -np 8 --oversubscribe).
//   Placement      every N up to 64: the taking-part ranks are numbered 0..p'-1 once each, and
//                  exactly N - p' ranks fold into a partner.
//   ExactAsMpi     integer-valued floats that differ by rank and position, fp32/bf16/fp16, counts
//                  0, 1, N-1, N, N+1, a prime, 3N+1, 2^18+3, waited and polled: bit for bit
//                  MPI_Allreduce, with exactly the scratch asked for (a guard float past it).
//   Inexact        sin() inputs: every rank ends with rank 0's bits, polled as waited.
//   TwoInFlight    two operations with different tag bases, progressed in alternation.
// Verdicts through all_ranks() so all ranks agree.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cifar_mpi/comm/rhd_allreduce.hpp"
#include "mpi/mpi_test_util.hpp"

namespace {

using cifar::RhdAllreduce;
using cifar::WireDtype;
using namespace cifar::testing;

constexpr WireDtype kWires[] = {WireDtype::fp32, WireDtype::bf16, WireDtype::fp16};

std::vector<size_t> counts() {
  const size_t n = static_cast<size_t>(world_size());
  return {0, 1, n - 1, n, n + 1, 97, 3 * n + 1, (size_t{1} << 18) + 3};
}

// fp32: large integers, exact sums up to ~4000 ranks. 16-bit: 0..15, every partial sum <= 15 N
// <= 240 < 256 for N <= 16, exact in bf16 and fp16.
float exact_value(int rank, size_t i, WireDtype wire) {
  if (wire == WireDtype::fp32) return static_cast<float>((rank + 1) * 1000 + (i * (rank + 1) + 7) % 4099);
  return static_cast<float>((static_cast<size_t>(rank) * 7 + i * 3) % 16);
}
float real_value(int rank, size_t i) { return static_cast<float>(std::sin(0.37 * static_cast<double>(i) + rank)); }

TEST(RhdAllreduce, Placement) {
  for (int n = 1; n <= 64; ++n) {
    const cifar::RhdPlace p0 = cifar::rhd_place(0, n);
    EXPECT_TRUE(p0.pow2 <= n && 2 * p0.pow2 > n && (1 << p0.steps) == p0.pow2) << n;
    std::vector<int> seen(static_cast<size_t>(p0.pow2), 0);
    int folded = 0;
    for (int r = 0; r < n; ++r) {
      const int v = cifar::rhd_place(r, n).vrank;
      if (v < 0) {
        ++folded;
        EXPECT_TRUE(r % 2 == 0 && cifar::rhd_place(r + 1, n).vrank >= 0) << n << " " << r;
      } else {
        ASSERT_LT(v, p0.pow2);
        ++seen[static_cast<size_t>(v)];
      }
    }
    EXPECT_EQ(folded, n - p0.pow2) << n;
    EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int c) { return c == 1; })) << n;
  }
}

TEST(RhdAllreduce, ExactAsMpiAllreduce) {
  const int rank = world_rank(), n = world_size();
  ASSERT_LE(n, 16) << "16-bit inputs chosen for N <= 16";
  for (WireDtype wire : kWires) {
    RhdAllreduce algo(MPI_COMM_WORLD, wire);
    for (size_t count : counts())
      for (bool polled : {false, true}) {
        std::vector<float> got(count);
        for (size_t i = 0; i < count; ++i) got[i] = exact_value(rank, i, wire);
        std::vector<float> want = got;
        MPI_Allreduce(MPI_IN_PLACE, want.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        const bool scratch_ok = run(algo, got, polled);
        const std::string what = cifar::to_string(wire) + " count " + std::to_string(count) +
                                 (polled ? " polled" : " waited") + " N " + std::to_string(n);
        EXPECT_TRUE(all_ranks(scratch_ok)) << what << ": wrote past its scratch or not complete";
        EXPECT_TRUE(all_ranks(bits_equal(got, want))) << what << ": differs from MPI_Allreduce";
      }
  }
}

TEST(RhdAllreduce, InexactSumsAgreeAcrossRanksAndForms) {
  const int rank = world_rank();
  for (WireDtype wire : kWires) {
    RhdAllreduce algo(MPI_COMM_WORLD, wire);
    for (size_t count : counts()) {
      std::vector<float> waited(count);
      for (size_t i = 0; i < count; ++i) waited[i] = real_value(rank, i);
      std::vector<float> polled = waited;
      const bool ok = run(algo, waited, false) && run(algo, polled, true);
      const std::string what = cifar::to_string(wire) + " count " + std::to_string(count);
      EXPECT_TRUE(all_ranks(ok && bits_equal(waited, polled))) << what << ": forms differ";
      EXPECT_TRUE(all_ranks(same_bits_as_rank0(waited))) << what << ": ranks disagree bitwise";
    }
  }
}

TEST(RhdAllreduce, TwoInFlightWithTheirOwnTags) {
  const int rank = world_rank();
  const size_t count = 1001;
  RhdAllreduce a(MPI_COMM_WORLD, WireDtype::fp32, 0), b(MPI_COMM_WORLD, WireDtype::fp32, 1);
  std::vector<float> da(count), db(count), sa(a.scratch_floats(count)), sb(b.scratch_floats(count));
  for (size_t i = 0; i < count; ++i) {
    da[i] = exact_value(rank, i, WireDtype::fp32);
    db[i] = exact_value(rank, i + 5, WireDtype::fp32);
  }
  std::vector<float> wa = da, wb = db;
  MPI_Allreduce(MPI_IN_PLACE, wa.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, wb.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  a.start(da.data(), count, sa.data());
  b.start(db.data(), count, sb.data());
  bool done_a = false, done_b = false;
  while (!(done_a && done_b)) {  // b first on odd ranks: the order of polls may differ by rank
    if (rank % 2) done_b = b.progress();
    done_a = a.progress();
    done_b = b.progress();
  }
  EXPECT_TRUE(all_ranks(bits_equal(da, wa) && bits_equal(db, wb)));
}

}  // namespace
