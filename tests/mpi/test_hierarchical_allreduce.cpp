// Hierarchical all-reduce, the ring and rhd as the cross-host step, on hosts drawn on one machine
// (HostLayout's host_color): ranks placed host by host (color rank / L) and round-robin (color
// rank % H), for every L that divides N. Integer-valued inputs make every sum exact in float
// whatever the order of additions, so the result must equal the closed form bit for bit; inexact
// inputs check that every rank ends with the same bits, that the polled form equals the blocking
// one, and that with one rank per host the result is bitwise the flat ring's or rhd's, and with
// one host the flat ring's (the layouts that the hierarchy cannot change). Verdicts go through
// all_ranks() so all ranks agree. ctest runs it at N = 1..4 (2 hosts x 2 at N = 4); at N = 6 and
// 8 (3 hosts x 2, 2 x 3, 4 x 2, 2 x 4: rhd's fold across 3 hosts) run it by hand:
//   mpirun -np 8 --oversubscribe build/test_hierarchical_allreduce
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cifar_mpi/comm/hierarchical_allreduce.hpp"
#include "cifar_mpi/comm/host_layout.hpp"
#include "cifar_mpi/comm/rhd_allreduce.hpp"
#include "cifar_mpi/comm/ring_allreduce.hpp"
#include "cifar_mpi/comm/wire_dtype.hpp"
#include "cifar_mpi/util/error.hpp"
#include "mpi/mpi_test_util.hpp"

namespace {

using cifar::CrossHostStep;
using namespace cifar::testing;  // all_ranks, bits_equal, same_bits_as_rank0, world_rank, world_size

constexpr CrossHostStep kAcross[] = {CrossHostStep::ring, CrossHostStep::rhd};
std::string name(CrossHostStep across) { return across == CrossHostStep::rhd ? "rhd across, " : "ring across, "; }

// An integer below 2^17 that depends on rank and position (a prime period, so it does not line
// up with segment boundaries): any sum over N <= 64 ranks is exact in float.
float exact_value(int rank, size_t i) {
  return static_cast<float>((rank + 1) * 1000 + static_cast<int64_t>((i * static_cast<size_t>(rank + 1) + 7) % 4099));
}
float inexact_value(int rank, size_t i) {
  return static_cast<float>(std::sin(0.37 * static_cast<double>(i) + rank) * std::pow(10.0, rank % 5) + 0.1 * rank);
}

std::vector<float> input(int rank, size_t count, bool exact) {
  std::vector<float> v(count);
  for (size_t i = 0; i < count; ++i) v[i] = exact ? exact_value(rank, i) : inexact_value(rank, i);
  return v;
}

std::vector<size_t> counts() {
  const size_t n = static_cast<size_t>(world_size());
  return {0, 1, n - 1, n, n + 1, 2 * n + 1, 97, 1000, (size_t{1} << 18) + 3};
}

struct Placement {
  int per_host;
  bool round_robin;  // rank r on host r % H (the ring crosses a link at every hop) instead of r / L
  int color(int rank, int n) const { return round_robin ? rank % (n / per_host) : rank / per_host; }
  std::string name() const {
    return std::to_string(per_host) + " rank(s) per host" + (round_robin ? ", round-robin" : ", host by host");
  }
};

std::vector<Placement> placements() {
  std::vector<Placement> p;
  const int n = world_size();
  for (int per_host = 1; per_host <= n; ++per_host)
    if (n % per_host == 0)
      for (bool rr : {false, true}) p.push_back({per_host, rr});
  return p;
}

// Runs the hierarchical all-reduce in place with exactly the scratch it asks for plus a guard.
bool run(std::vector<float>& data, const cifar::HostLayout& hosts, bool polled, CrossHostStep across,
         int tag_base = 0) {
  cifar::HierarchicalAllreduce op(hosts, cifar::WireDtype::fp32, tag_base, across);
  const size_t scratch_n = op.scratch_floats(data.size());
  std::vector<float> scratch(scratch_n + 1, 0.0f);
  const float guard = -12345.0f;
  scratch[scratch_n] = guard;
  op.start(data.data(), data.size(), scratch.data());
  if (polled) {
    while (!op.progress()) {
    }
    if (op.in_flight()) return false;
  } else {
    op.wait();  // the blocking form: start + wait
  }
  return scratch[scratch_n] == guard;
}

TEST(HierarchicalAllreduce, LayoutCountsHostsAndRanks) {
  const int rank = world_rank(), n = world_size();
  for (const Placement& p : placements()) {
    cifar::HostLayout hosts(MPI_COMM_WORLD, p.color(rank, n));
    const bool ok = hosts.uniform() && hosts.ranks_per_host() == p.per_host && hosts.hosts() == n / p.per_host;
    EXPECT_TRUE(all_ranks(ok)) << p.name() << ": " << hosts.hosts() << " hosts x " << hosts.ranks_per_host();
  }
  // The real layout: every test rank runs on this one machine.
  cifar::HostLayout machine(MPI_COMM_WORLD);
  EXPECT_TRUE(all_ranks(machine.hosts() == 1 && machine.ranks_per_host() == n));
}

TEST(HierarchicalAllreduce, ExactForEveryPlacementAndCount) {
  const int rank = world_rank(), n = world_size();
  for (CrossHostStep across : kAcross)
    for (const Placement& p : placements()) {
      cifar::HostLayout hosts(MPI_COMM_WORLD, p.color(rank, n));
      for (size_t count : counts()) {
        std::vector<float> want(count, 0.0f);
        for (int r = 0; r < n; ++r)
          for (size_t i = 0; i < count; ++i) want[i] += exact_value(r, i);
        for (bool polled : {false, true}) {
          std::vector<float> got = input(rank, count, true);
          const bool scratch_ok = run(got, hosts, polled, across);
          EXPECT_TRUE(all_ranks(scratch_ok))
              << name(across) << p.name() << ", count " << count << ": wrote past its scratch";
          EXPECT_TRUE(all_ranks(bits_equal(got, want)))
              << name(across) << p.name() << ", count " << count << (polled ? ", polled" : ", blocking")
              << ": not the exact sum";
        }
      }
    }
}

TEST(HierarchicalAllreduce, InexactSumsAgreeAcrossRanksAndForms) {
  const int rank = world_rank(), n = world_size();
  for (CrossHostStep across : kAcross)
    for (const Placement& p : placements()) {
      cifar::HostLayout hosts(MPI_COMM_WORLD, p.color(rank, n));
      for (size_t count : counts()) {
        const std::vector<float> in = input(rank, count, false);
        std::vector<float> blocking = in, polled = in, flat = in, flat_rhd = in, mpi = in;
        const bool blocking_ok = run(blocking, hosts, false, across);  // both run on every rank: collectives
        const bool polled_ok = run(polled, hosts, true, across, 7);
        bool ok = blocking_ok && polled_ok;
        std::vector<float> scratch(cifar::ring_scratch_floats(count, n) + 1);
        cifar::ring_allreduce_sum(flat.data(), count, scratch.data(), MPI_COMM_WORLD);
        cifar::RhdAllreduce rhd(MPI_COMM_WORLD);
        std::vector<float> rhd_scratch(rhd.scratch_floats(count) + 1);
        rhd.start(flat_rhd.data(), count, rhd_scratch.data());
        rhd.wait();
        MPI_Allreduce(MPI_IN_PLACE, mpi.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        for (size_t i = 0; i < count && ok; ++i)
          ok = std::fabs(blocking[i] - mpi[i]) <= 1e-3f * (1.0f + std::fabs(mpi[i]));
        const bool same = same_bits_as_rank0(blocking);
        const std::string what = name(across) + p.name() + ", count " + std::to_string(count);
        EXPECT_TRUE(all_ranks(ok)) << what << ": wrong sum or scratch overrun";
        EXPECT_TRUE(all_ranks(bits_equal(blocking, polled))) << what << ": forms differ";
        EXPECT_TRUE(all_ranks(same)) << what << ": ranks disagree bitwise";
        // One rank per host: the flat cross-host algorithm exactly. One host holding all ranks in
        // rank order: the flat ring (the cross-host step has one rank).
        if (p.per_host == 1)
          EXPECT_TRUE(all_ranks(bits_equal(blocking, across == CrossHostStep::rhd ? flat_rhd : flat)))
              << what << ": not the flat " << (across == CrossHostStep::rhd ? "rhd" : "ring");
        if (p.per_host == n && !p.round_robin)
          EXPECT_TRUE(all_ranks(bits_equal(blocking, flat))) << what << ": not the flat ring";
      }
    }
}

// 16-bit values on the links: small integers (every partial sum below 2^8) are exact in bf16 and
// fp16, so the sum must be exact; sines must leave every rank with the same bits.
TEST(HierarchicalAllreduce, Wire16ExactWhereTheFormatIsExactAndAgreesAcrossRanks) {
  const int rank = world_rank(), n = world_size();
  for (CrossHostStep across : kAcross)
    for (cifar::WireDtype wire : {cifar::WireDtype::bf16, cifar::WireDtype::fp16})
      for (const Placement& p : placements()) {
        cifar::HostLayout hosts(MPI_COMM_WORLD, p.color(rank, n));
        for (size_t count : counts()) {
          std::vector<float> small(count), want(count, 0.0f), sines = input(rank, count, false);
          for (size_t i = 0; i < count; ++i) {
            small[i] = static_cast<float>((static_cast<size_t>(rank) * 7 + i) % 32);
            for (int r = 0; r < n; ++r) want[i] += static_cast<float>((static_cast<size_t>(r) * 7 + i) % 32);
          }
          cifar::HierarchicalAllreduce op(hosts, wire, 0, across);
          const size_t scratch_n = op.scratch_floats(count);
          std::vector<float> scratch(scratch_n + 1);
          const float guard = -12345.0f;
          scratch[scratch_n] = guard;
          for (auto* v : {&small, &sines}) {
            op.start(v->data(), count, scratch.data());
            op.wait();
          }
          EXPECT_TRUE(all_ranks(scratch[scratch_n] == guard)) << cifar::to_string(wire) << ": wrote past its scratch";
          const std::string what =
              name(across) + cifar::to_string(wire) + ", " + p.name() + ", count " + std::to_string(count);
          EXPECT_TRUE(all_ranks(bits_equal(small, want))) << what << ": not the exact sum";
          EXPECT_TRUE(all_ranks(same_bits_as_rank0(sines))) << what << ": ranks disagree bitwise";
        }
      }
}

TEST(HierarchicalAllreduce, RefusesHostsOfDifferentSizes) {
  const int rank = world_rank(), n = world_size();
  if (n < 3) GTEST_SKIP() << "needs 3 ranks for hosts of 1 and 2";
  cifar::HostLayout hosts(MPI_COMM_WORLD, rank == 0 ? 0 : 1);  // 1 rank, then n - 1
  EXPECT_FALSE(hosts.uniform());
  for (CrossHostStep across : kAcross) {
    bool threw = false;
    try {
      cifar::HierarchicalAllreduce op(hosts, cifar::WireDtype::fp32, 0, across);
    } catch (const cifar::Error& e) {
      threw = std::string(e.what()).find("same number of ranks on every host") != std::string::npos;
    }
    EXPECT_TRUE(all_ranks(threw)) << name(across);
  }
}

}  // namespace
