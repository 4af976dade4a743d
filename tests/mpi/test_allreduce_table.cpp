// Every row of the all-reduce table (allreduce.hpp) with every wire type, through the one
// interface: small integers, whose every partial sum is exact even in bf16, must give
// MPI_Allreduce(MPI_SUM)'s result bit for bit, with exactly the scratch the algorithm asks for
// (a guard float past it stays untouched); inexact inputs must leave every rank with the same
// bits, polled (progress) and blocking (wait) alike, and the two forms the same bits (MPI's rows:
// within a few roundings, see forms_agree). And make_allreduce picks the row the
// trainer's rule names. Verdicts go through all_ranks() so all ranks agree.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "cifar_mpi/comm/allreduce.hpp"
#include "cifar_mpi/comm/host_layout.hpp"
#include "mpi/mpi_test_util.hpp"

namespace {

using cifar::WireDtype;
using namespace cifar::testing;  // all_ranks, bits_equal, same_bits_as_rank0, world_rank, world_size

constexpr WireDtype kWires[] = {WireDtype::fp32, WireDtype::bf16, WireDtype::fp16};

std::vector<size_t> counts() {
  const size_t n = static_cast<size_t>(world_size());
  return {0, 1, n - 1, n, n + 1, 97, 1000, (size_t{1} << 18) + 3};
}

// Integers 0..60: at N <= 4 every partial sum is <= 240 < 256, exact in bf16 and fp16.
float small_int(int rank, size_t i) { return static_cast<float>((static_cast<size_t>(rank) * 7 + i * 3) % 61); }
float real_value(int rank, size_t i) { return static_cast<float>(std::sin(0.37 * static_cast<double>(i) + rank)); }

// The row made as the trainer makes it; a hierarchical row (hierarchical ring, hierarchical rhd)
// gets hosts of 2 ranks where N is even (2 hosts x 2 at N = 4), else of 1.
std::unique_ptr<cifar::Allreduce> make(const cifar::AllreduceRow& row, WireDtype wire) {
  std::unique_ptr<cifar::HostLayout> hosts;
  if (row.hierarchical) {
    const int per_host = world_size() % 2 == 0 ? 2 : 1;
    hosts = std::make_unique<cifar::HostLayout>(MPI_COMM_WORLD, world_rank() / per_host);
  }
  return row.make(MPI_COMM_WORLD, wire, std::move(hosts));
}

TEST(AllreduceTable, EveryRowAndWireIsExactAsMpiAllreduce) {
  const int rank = world_rank(), n = world_size();
  ASSERT_LE(n, 4) << "inputs chosen for N <= 4";
  for (const cifar::AllreduceRow& row : cifar::allreduce_table())
    for (WireDtype wire : kWires) {
      const auto algo = make(row, wire);
      for (size_t count : counts())
        for (bool polled : {false, true}) {
          std::vector<float> got(count);
          for (size_t i = 0; i < count; ++i) got[i] = small_int(rank, i);
          std::vector<float> want = got;
          MPI_Allreduce(MPI_IN_PLACE, want.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
          const bool scratch_ok = run(*algo, got, polled);
          const std::string what = std::string(row.name) + " " + cifar::to_string(wire) + " count " +
                                   std::to_string(count) + (polled ? " polled" : " waited");
          EXPECT_TRUE(all_ranks(scratch_ok)) << what << ": wrote past its scratch or not complete";
          EXPECT_TRUE(all_ranks(bits_equal(got, want))) << what << ": differs from MPI_Allreduce";
        }
    }
}

// Waited and polled give the same bits, except MPI's rows (mpi, naive): waited is MPI_Allreduce,
// polled MPI_Iallreduce, which Open MPI runs with other algorithms that may add in another order.
// Those must agree within a few roundings of the wire type (|values| <= 1, N <= 4).
bool forms_agree(const cifar::AllreduceRow& row, WireDtype wire, const std::vector<float>& waited,
                 const std::vector<float>& polled) {
  const bool mpis = row.strategy == cifar::AllreduceStrategy::mpi || row.strategy == cifar::AllreduceStrategy::naive;
  if (!mpis) return bits_equal(waited, polled);
  const float tol = wire == WireDtype::bf16 ? 0x1p-5f : wire == WireDtype::fp16 ? 0x1p-8f : 0x1p-18f;
  bool ok = waited.size() == polled.size();
  for (size_t i = 0; ok && i < waited.size(); ++i) ok = std::fabs(waited[i] - polled[i]) <= tol;
  return ok;
}

TEST(AllreduceTable, InexactSumsAgreeAcrossRanksAndForms) {
  const int rank = world_rank();
  for (const cifar::AllreduceRow& row : cifar::allreduce_table())
    for (WireDtype wire : kWires) {
      const auto algo = make(row, wire);
      for (size_t count : counts()) {
        std::vector<float> waited(count);
        for (size_t i = 0; i < count; ++i) waited[i] = real_value(rank, i);
        std::vector<float> polled = waited;
        const bool ok = run(*algo, waited, false) && run(*algo, polled, true);
        const std::string what = std::string(row.name) + " " + cifar::to_string(wire) + " count " + std::to_string(count);
        EXPECT_TRUE(all_ranks(ok && forms_agree(row, wire, waited, polled))) << what << ": forms differ";
        EXPECT_TRUE(all_ranks(same_bits_as_rank0(waited))) << what << ": ranks disagree bitwise";
        EXPECT_TRUE(all_ranks(same_bits_as_rank0(polled))) << what << ": ranks disagree bitwise, polled";
      }
    }
}

TEST(AllreduceTable, MakeAllreducePicksTheTrainersRow) {
  using cifar::AllreduceStrategy;
  using cifar::RingLayout;
  const int n = world_size(), color = world_rank() / 2;  // hosts of 2 ranks: hierarchical at N = 4
  const auto name = [&](AllreduceStrategy s, RingLayout l) {
    return std::string(cifar::make_allreduce(s, WireDtype::fp32, l, MPI_COMM_WORLD, color).row->name);
  };
  bool ok = name(AllreduceStrategy::naive, RingLayout::hosts) == "naive" &&
            name(AllreduceStrategy::mpi, RingLayout::hosts) == "mpi" &&
            name(AllreduceStrategy::ring, RingLayout::flat) == "ring" &&
            name(AllreduceStrategy::rhd, RingLayout::flat) == "rhd";
  const std::string ring_hosts = name(AllreduceStrategy::ring, RingLayout::hosts);
  const std::string rhd_hosts = name(AllreduceStrategy::rhd, RingLayout::hosts);
  ok = ok && ring_hosts == (n == 4 ? "hierarchical ring" : "ring") && rhd_hosts == (n == 4 ? "hierarchical rhd" : "rhd");
  const auto hierarchical = cifar::make_allreduce(AllreduceStrategy::ring, WireDtype::bf16, RingLayout::hosts,
                                                  MPI_COMM_WORLD, color);
  const auto hierarchical_rhd = cifar::make_allreduce(AllreduceStrategy::rhd, WireDtype::fp16, RingLayout::hosts,
                                                      MPI_COMM_WORLD, color);
  if (n == 4)
    ok = ok && hierarchical.description == "hierarchical ring (2 hosts x 2 ranks)" &&
         hierarchical_rhd.description == "hierarchical rhd (2 hosts x 2 ranks)";
  if (n == 3)
    ok = ok && hierarchical.description == "ring (flat ring: hosts have different numbers of ranks)" &&
         hierarchical_rhd.description == "rhd (flat rhd: hosts have different numbers of ranks)";
  EXPECT_TRUE(all_ranks(ok)) << ring_hosts << " / " << rhd_hosts << " / " << hierarchical.description << " / "
                             << hierarchical_rhd.description;
}

}  // namespace
