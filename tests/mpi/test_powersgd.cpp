// PowerSGD (comm/powersgd.hpp) against a plain reference: naive double loops that hold every
// rank's gradients in one process and do what the hook does, step by step.
//
//   MatchesReference          every algorithm and wire type (fp32 exact-ish, 16-bit within its
//                             rounding), 3 steps with warm start and error feedback
//   ErrorFeedbackInvariant    after every step, M + E_old = P Q^T + E_new on each rank
//   ReplicasBitwiseEqual      R = 1..4: every rank holds the same averaged gradients, bit for bit
//   FullRankIsPlainAverage    every matrix compressed (rate rule off) at R = min(rows, cols): 5 SGD
//                             steps land within 1e-4 (relative) of plain all-reduce's weights
//   WhichTensorsAreCompressed the rate-under-2 rule, vectors, the rank clamp, on this model's shapes
//
// Every verdict goes through all_ranks(), so no rank is left in a collective.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cifar_mpi/comm/allreduce.hpp"
#include "cifar_mpi/comm/powersgd.hpp"
#include "cifar_mpi/model/param_arena.hpp"
#include "mpi/mpi_test_util.hpp"

namespace {

using cifar::AllreduceStrategy;
using cifar::PowerSgd;
using cifar::PowerSgdOptions;
using cifar::WireDtype;
using cifar::testing::all_ranks;
using cifar::testing::same_bits_as_rank0;
using cifar::testing::world_rank;
using cifar::testing::world_size;

// A small model's layout: a conv weight (6 x 12), a tall and a wide matrix, biases.
cifar::ParamArena small_arena() {
  cifar::ParamArena a;
  a.add("conv.weight", {6, 3, 2, 2});
  a.add("conv.bias", {6});
  a.add("tall.weight", {40, 9});
  a.add("tall.bias", {40});
  a.add("wide.weight", {5, 30});
  a.finalize();
  return a;
}

// Rank r's gradient at step s: deterministic, different per rank and step.
float grad_value(int rank, int step, size_t i) {
  return static_cast<float>(std::sin(0.113 * static_cast<double>(i) * (rank + 1) + 0.7 * step + rank) *
                            (1.0 + 0.25 * rank));
}

std::vector<float> rank_grads(size_t n, int rank, int step) {
  std::vector<float> g(n);
  for (size_t i = 0; i < n; ++i) g[i] = grad_value(rank, step, i);
  return g;
}

// --- the plain reference ------------------------------------------------------------------

using Mat = std::vector<double>;  // row-major

void gram_schmidt(Mat& a, size_t rows, size_t cols) {
  for (size_t i = 0; i < cols; ++i) {
    double n2 = 0;
    for (size_t r = 0; r < rows; ++r) n2 += a[r * cols + i] * a[r * cols + i];
    const double n = std::sqrt(n2);
    for (size_t r = 0; r < rows; ++r) a[r * cols + i] = n > 0 ? a[r * cols + i] / n : 0;
    for (size_t j = i + 1; j < cols; ++j) {
      double d = 0;
      for (size_t r = 0; r < rows; ++r) d += a[r * cols + i] * a[r * cols + j];
      for (size_t r = 0; r < rows; ++r) a[r * cols + j] -= d * a[r * cols + i];
    }
  }
}

// Every rank's PowerSGD state, in one process.
struct Reference {
  const PowerSgd& layout;  // which tensors, their ranks and offsets (checked separately)
  int n;
  std::vector<Mat> q;                  // per matrix, the same on every rank
  std::vector<std::vector<Mat>> err;   // [rank][matrix]

  Reference(const PowerSgd& l, int world, std::span<const float> q0) : layout(l), n(world) {
    for (const auto& m : l.matrices()) q.emplace_back(q0.begin() + m.q_offset, q0.begin() + m.q_offset + m.cols * m.rank);
    err.assign(n, {});
    for (auto& e : err)
      for (const auto& m : l.matrices()) e.emplace_back(m.rows * m.cols, 0.0);
  }

  // grads[r]: rank r's arena gradients in; the average every rank gets out.
  std::vector<double> step(const std::vector<std::vector<float>>& grads) {
    std::vector<double> out(grads[0].begin(), grads[0].end());
    for (size_t i = 0; i < out.size(); ++i) {  // uncompressed: the plain average
      double s = 0;
      for (int r = 0; r < n; ++r) s += grads[r][i];
      out[i] = s / n;
    }
    for (size_t k = 0; k < layout.matrices().size(); ++k) {
      const auto& m = layout.matrices()[k];
      const size_t R = m.rank;
      std::vector<Mat> M(n, Mat(m.rows * m.cols));
      for (int r = 0; r < n; ++r)
        for (size_t i = 0; i < m.rows * m.cols; ++i) M[r][i] = grads[r][m.offset + i] + err[r][k][i];
      gram_schmidt(q[k], m.cols, R);
      Mat p(m.rows * R, 0.0);
      for (int r = 0; r < n; ++r)
        for (size_t i = 0; i < m.rows; ++i)
          for (size_t j = 0; j < R; ++j)
            for (size_t c = 0; c < m.cols; ++c) p[i * R + j] += M[r][i * m.cols + c] * q[k][c * R + j];
      gram_schmidt(p, m.rows, R);
      Mat qn(m.cols * R, 0.0);
      for (int r = 0; r < n; ++r)
        for (size_t c = 0; c < m.cols; ++c)
          for (size_t j = 0; j < R; ++j)
            for (size_t i = 0; i < m.rows; ++i) qn[c * R + j] += M[r][i * m.cols + c] * p[i * R + j] / n;
      q[k] = qn;
      for (size_t i = 0; i < m.rows; ++i)
        for (size_t c = 0; c < m.cols; ++c) {
          double s = 0;
          for (size_t j = 0; j < R; ++j) s += p[i * R + j] * q[k][c * R + j];
          out[m.offset + i * m.cols + c] = s;
          for (int r = 0; r < n; ++r) err[r][k][i * m.cols + c] = M[r][i * m.cols + c] - s;
        }
    }
    return out;
  }
};

double max_abs(std::span<const double> v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

struct Case {
  AllreduceStrategy strategy;
  WireDtype wire;
  double tolerance;  // relative to the largest value
};

// Runs `steps` steps of PowerSGD on this rank and of the reference beside it; true if every
// rank's result is within `tolerance` (relative to the largest value) of the reference's, and the
// error-feedback identity M + E_old = P Q^T + E_new holds on this rank after every step.
bool matches_reference(const cifar::ParamArena& arena, PowerSgdOptions options, AllreduceStrategy strategy,
                       WireDtype wire, double tolerance, int steps) {
  const int n = world_size(), me = world_rank();
  auto algo = cifar::make_allreduce(strategy, wire, cifar::RingLayout::flat, MPI_COMM_WORLD);
  PowerSgd psgd(arena.specs(), options);
  Reference ref(psgd, n, psgd.q());
  bool ok = true;
  for (int step = 0; step < steps; ++step) {
    std::vector<std::vector<float>> all;
    for (int r = 0; r < n; ++r) all.push_back(rank_grads(arena.total_count(), r, step));
    const std::vector<double> want = ref.step(all);
    std::vector<float> mine = all[me];
    const std::vector<float> error_before(psgd.error().begin(), psgd.error().end());
    cifar::StepCommStats stats;
    psgd.reduce(mine, *algo.algo, n, stats);
    ok = ok && stats.calls == 2;
    const double scale = max_abs(want);
    for (size_t i = 0; i < mine.size(); ++i) ok = ok && std::abs(mine[i] - want[i]) <= tolerance * scale;
    for (const auto& m : psgd.matrices())
      for (size_t i = 0; i < m.rows * m.cols; ++i) {
        const double before = static_cast<double>(all[me][m.offset + i]) + error_before[m.e_offset + i];
        const double after = static_cast<double>(mine[m.offset + i]) + psgd.error()[m.e_offset + i];
        ok = ok && std::abs(before - after) <= 1e-6 * (1 + std::abs(before));
      }
  }
  return ok;
}

TEST(PowerSgd, MatchesReference) {
  const auto arena = small_arena();
  for (const Case c : {Case{AllreduceStrategy::mpi, WireDtype::fp32, 1e-4}, Case{AllreduceStrategy::ring, WireDtype::fp32, 1e-4},
                       Case{AllreduceStrategy::rhd, WireDtype::fp32, 1e-4}})
    for (size_t rank : {1, 2, 4})
      EXPECT_TRUE(all_ranks(matches_reference(arena, {rank, 0.0, 7}, c.strategy, c.wire, c.tolerance, 3)))
          << to_string(c.strategy) << " rank " << rank;
}

TEST(PowerSgd, SixteenBitWireStaysNearReference) {
  // bf16 P and Q are rounded on the wire, so the reference (fp32 sums) is near, not equal.
  const auto arena = small_arena();
  for (const auto wire : {WireDtype::bf16, WireDtype::fp16})
    EXPECT_TRUE(all_ranks(matches_reference(arena, {2, 0.0, 7}, AllreduceStrategy::ring, wire, 0.05, 1)))
        << to_string(wire);
}

TEST(PowerSgd, ReplicasBitwiseEqual) {
  const int n = world_size(), me = world_rank();
  const auto arena = small_arena();
  for (const auto strategy : {AllreduceStrategy::mpi, AllreduceStrategy::ring, AllreduceStrategy::rhd})
    for (const auto wire : {WireDtype::fp32, WireDtype::bf16})
      for (size_t rank = 1; rank <= 4; ++rank) {
        auto algo = cifar::make_allreduce(strategy, wire, cifar::RingLayout::flat, MPI_COMM_WORLD);
        PowerSgd psgd(arena.specs(), {rank, 0.0, 3});
        bool ok = true;
        for (int step = 0; step < 5; ++step) {
          std::vector<float> g = rank_grads(arena.total_count(), me, step);
          cifar::StepCommStats stats;
          psgd.reduce(g, *algo.algo, n, stats);
          ok = ok && same_bits_as_rank0(g);
        }
        EXPECT_TRUE(all_ranks(ok)) << to_string(strategy) << " " << to_string(wire) << " rank " << rank;
      }
}

// Plain SGD with momentum on a loss whose gradient depends on the weights (so a difference grows):
// g_r = (1 + 0.1 r) w + rank r's data term.
std::vector<float> train(const cifar::ParamArena& arena, PowerSgd* psgd, AllreduceStrategy strategy) {
  const int n = world_size(), me = world_rank();
  auto algo = cifar::make_allreduce(strategy, WireDtype::fp32, cifar::RingLayout::flat, MPI_COMM_WORLD);
  std::vector<float> w(arena.total_count()), v(w.size(), 0.0f), scratch(algo.algo->scratch_floats(w.size()) + 1);
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.1f * static_cast<float>(std::cos(0.3 * static_cast<double>(i)));
  for (int step = 0; step < 5; ++step) {
    std::vector<float> g = rank_grads(w.size(), me, step);
    for (size_t i = 0; i < w.size(); ++i) g[i] += (1.0f + 0.1f * static_cast<float>(me)) * w[i];
    if (psgd) {
      cifar::StepCommStats stats;
      psgd->reduce(g, *algo.algo, n, stats);
    } else {
      algo.algo->start(g.data(), g.size(), scratch.data());
      algo.algo->wait();
      for (float& x : g) x /= static_cast<float>(n);
    }
    for (size_t i = 0; i < w.size(); ++i) {
      v[i] = 0.9f * v[i] + g[i];
      w[i] -= 0.05f * v[i];
    }
  }
  return w;
}

TEST(PowerSgd, FullRankIsPlainAverage) {
  const auto arena = small_arena();
  for (const auto strategy : {AllreduceStrategy::mpi, AllreduceStrategy::ring}) {
    PowerSgd psgd(arena.specs(), {1000, 0.0, 11});  // every matrix, rank clamped to min(rows, cols)
    bool all_full = psgd.matrices().size() == 3;
    for (const auto& m : psgd.matrices()) all_full = all_full && m.rank == std::min(m.rows, m.cols);
    const auto plain = train(arena, nullptr, strategy), compressed = train(arena, &psgd, strategy);
    double scale = 0, worst = 0;
    for (size_t i = 0; i < plain.size(); ++i) {
      scale = std::max(scale, static_cast<double>(std::abs(plain[i])));
      worst = std::max(worst, static_cast<double>(std::abs(plain[i] - compressed[i])));
    }
    EXPECT_TRUE(all_ranks(all_full && worst <= 1e-4 * scale)) << to_string(strategy) << ": off by " << worst / scale;
  }
}

TEST(PowerSgd, WhichTensorsAreCompressed) {
  // This model's tensors (simple_cnn.cpp) at rank 4: every weight is worth it, no bias is.
  cifar::ParamArena a;
  a.add("conv1.weight", {32, 3, 3, 3});
  a.add("conv1.bias", {32});
  a.add("conv2.weight", {64, 32, 3, 3});
  a.add("conv2.bias", {64});
  a.add("fc1.weight", {128, 2304});
  a.add("fc1.bias", {128});
  a.add("fc2.weight", {10, 128});
  a.add("fc2.bias", {10});
  a.finalize();
  PowerSgd r4(a.specs(), {4, 2.0, 0});
  ASSERT_EQ(r4.matrices().size(), 4u);
  EXPECT_EQ(r4.uncompressed_floats(), 32u + 64 + 128 + 10);
  for (const auto& m : r4.matrices())
    if (m.name == "conv2.weight") EXPECT_TRUE(m.rows == 64 && m.cols == 288 && m.rank == 4);
  // fc1: 2304x4 + 128x4 floats instead of 2304 x 128; the step sends ~29x less.
  EXPECT_GT(static_cast<double>(a.total_count()) / static_cast<double>(r4.floats_per_step()), 25.0);
  // At rank 8, fc2 (10 x 128) has rate 1280 / (138 * 8) < 2: uncompressed; conv1 (32 x 27) too.
  PowerSgd r8(a.specs(), {8, 2.0, 0});
  EXPECT_EQ(r8.matrices().size(), 2u);
  EXPECT_EQ(r8.uncompressed_floats(), 32u + 64 + 128 + 10 + 1280 + 864);
  // Rank clamp: asked 100, fc2 gets 10 (with the rate rule off).
  PowerSgd big(a.specs(), {100, 0.0, 0});
  for (const auto& m : big.matrices()) EXPECT_EQ(m.rank, std::min({m.rows, m.cols, size_t{100}})) << m.name;
  EXPECT_TRUE(all_ranks(true));
}

TEST(PowerSgd, OrthogonalizeGivesOrthonormalColumns) {
  // Full rank, and rank 2 in 3 columns (sin(1.7 k) obeys a two-term recurrence, so the third
  // column is a combination of the first two: it becomes rounding noise, made orthogonal too).
  for (const auto value : {+[](size_t i) { return std::sin(0.37 * static_cast<double>(i * i) + 0.1); },
                           +[](size_t i) { return std::sin(1.7 * static_cast<double>(i)); }}) {
    std::vector<float> a(20 * 3);
    for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(value(i));
    cifar::orthogonalize_columns(a.data(), 20, 3);
    for (size_t i = 0; i < 3; ++i)
      for (size_t j = 0; j < 3; ++j) {
        double d = 0;
        for (size_t r = 0; r < 20; ++r) d += static_cast<double>(a[r * 3 + i]) * a[r * 3 + j];
        EXPECT_NEAR(d, i == j ? 1.0 : 0.0, 1e-5) << i << "," << j;
      }
  }
  std::vector<float> zero(10 * 2, 0.0f);  // a zero column stays zero (no NaN)
  cifar::orthogonalize_columns(zero.data(), 10, 2);
  for (float v : zero) EXPECT_EQ(v, 0.0f);
  EXPECT_TRUE(all_ranks(true));
}

}  // namespace
