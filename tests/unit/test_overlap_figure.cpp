// What overlap did to the step (metrics/overlap_figure.hpp) against a plain re-computation, and
// the property the figure exists for: a slower overlapped step never shows more "hidden".
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cifar_mpi/metrics/overlap_figure.hpp"

namespace {

using cifar::OverlapFigure;
using cifar::StepRecord;

constexpr int kWorld = 2;

StepRecord rec(double data, double comp, double comm, double wait, double update, bool overlapped) {
  StepRecord r;
  r.t_data = data, r.t_comp = comp, r.t_comm = comm, r.t_wait = wait, r.t_update = update;
  r.overlapped = overlapped ? 1 : 0;
  return r;
}

// A run of 2 ranks: steps 0, 1 warm up (huge, must not count), steps 2, 3 held back, the rest
// overlapped. Rank 1 is slower in compute by `lag`.
std::vector<StepRecord> run(double comp_on, double comm_on, double wait_on, double lag = 0.001) {
  std::vector<StepRecord> v;
  for (int s = 0; s < 8; ++s) {
    const bool held = s == 2 || s == 3;
    for (int r = 0; r < kWorld; ++r) {
      const double slow = r * lag;
      if (s < 2)
        v.push_back(rec(1.0, 9.0, 9.0, 9.0, 1.0, true));
      else if (held)  // without overlap: comp 0.020, comm 0.010, rank 0 waits for rank 1 too
        v.push_back(rec(0.0002, 0.020 + slow, 0.010 + 0.0001 * s, 0.010 + (lag - slow), 0.0003, false));
      else
        v.push_back(rec(0.0002, comp_on + slow + 0.0001 * s, comm_on, wait_on + (lag - slow), 0.0003, true));
    }
  }
  return v;
}

// The same figure, computed the plain way: lists of per-step values, then means.
OverlapFigure plain(const std::vector<StepRecord>& v, bool overlap) {
  std::vector<double> step, comp, comm, other, step_ref, comp_ref, comm_ref, other_ref;
  for (size_t s = 2; s < v.size() / kWorld; ++s) {
    const StepRecord& a = v[s * kWorld];
    const StepRecord& b = v[s * kWorld + 1];
    const double st = std::max(a.t_data + a.t_comp + a.t_wait + a.t_update, b.t_data + b.t_comp + b.t_wait + b.t_update);
    const double cp = std::max(a.t_comp, b.t_comp), cm = (a.t_comm + b.t_comm) / 2;
    const double ot = std::max(a.t_data + a.t_update, b.t_data + b.t_update);
    if (!overlap || !a.overlapped) step_ref.push_back(st), comp_ref.push_back(cp), comm_ref.push_back(cm), other_ref.push_back(ot);
    if (!overlap || a.overlapped) step.push_back(st), comp.push_back(cp), comm.push_back(cm), other.push_back(ot);
  }
  const auto mean = [](const std::vector<double>& x) {
    double t = 0;
    for (double y : x) t += y;
    return t / static_cast<double>(x.size());
  };
  OverlapFigure f;
  f.step = mean(step), f.comp = mean(comp), f.comm = mean(comm);
  f.comp_ref = mean(comp_ref), f.comm_ref = mean(comm_ref), f.other_ref = mean(other_ref);
  f.no_overlap_step = f.other_ref + f.comp_ref + f.comm_ref;
  if (overlap) {
    f.saving = f.no_overlap_step - f.step;
    f.hidden = std::clamp(f.saving / f.comm_ref, 0.0, 1.0);
    f.realised = std::clamp(f.saving / std::min(f.comp_ref, f.comm_ref), 0.0, 1.0);
    f.comp_inflation = f.comp / f.comp_ref - 1;
  }
  return f;
}

void expect_same(const OverlapFigure& got, const OverlapFigure& want) {
  EXPECT_NEAR(got.step, want.step, 1e-12);
  EXPECT_NEAR(got.comp, want.comp, 1e-12);
  EXPECT_NEAR(got.comm, want.comm, 1e-12);
  EXPECT_NEAR(got.comp_ref, want.comp_ref, 1e-12);
  EXPECT_NEAR(got.comm_ref, want.comm_ref, 1e-12);
  EXPECT_NEAR(got.other_ref, want.other_ref, 1e-12);
  EXPECT_NEAR(got.no_overlap_step, want.no_overlap_step, 1e-12);
  EXPECT_NEAR(got.saving, want.saving, 1e-12);
  EXPECT_NEAR(got.hidden, want.hidden, 1e-12);
  EXPECT_NEAR(got.realised, want.realised, 1e-12);
  EXPECT_NEAR(got.comp_inflation, want.comp_inflation, 1e-12);
}

TEST(OverlapFigure, MatchesAPlainComputation) {
  const auto v = run(0.021, 0.014, 0.001);
  const OverlapFigure f = cifar::overlap_figure(v, kWorld, true);
  EXPECT_EQ(f.steps, 4u);
  EXPECT_EQ(f.reference_steps, 2u);
  expect_same(f, plain(v, true));
  // By hand: reference step 0.0002 + 0.021 + 0.010 + 0.0003 (rank 1), comm 0.01025 on average;
  // overlapped steps 0.0002 + 0.021 + 0.0001 s + 0.001 + 0.0003 (rank 1; s = 4..7 -> 0.00055).
  EXPECT_NEAR(f.no_overlap_step, 0.0005 + 0.021 + 0.01025, 1e-12);
  EXPECT_NEAR(f.step, 0.0005 + 0.022 + 0.00055 + 0.001, 1e-12);
  EXPECT_NEAR(f.hidden, (0.03175 - 0.02405) / 0.01025, 1e-9);
}

TEST(OverlapFigure, ASlowerStepNeverShowsMoreHidden) {
  // The communication ran longer beside a slower backward: T_comm - T_wait grows, the step too.
  const auto fast = run(0.021, 0.012, 0.001), slow = run(0.026, 0.020, 0.001);
  const OverlapFigure a = cifar::overlap_figure(fast, kWorld, true), b = cifar::overlap_figure(slow, kWorld, true);
  const auto old_share = [](const OverlapFigure& f) { return (f.comm - f.wait) / f.comm; };
  ASSERT_GT(old_share(b), old_share(a));  // what "hidden" used to report
  EXPECT_GT(b.step, a.step);
  EXPECT_LT(b.hidden, a.hidden);
  EXPECT_LT(b.realised, a.realised);
  EXPECT_GT(b.comp_inflation, a.comp_inflation);
}

TEST(OverlapFigure, AStepSlowerThanWithoutOverlapHidesNothing) {
  const auto v = run(0.030, 0.020, 0.002);
  const OverlapFigure f = cifar::overlap_figure(v, kWorld, true);
  EXPECT_LT(f.saving, 0);
  EXPECT_EQ(f.hidden, 0);
  EXPECT_EQ(f.realised, 0);
  expect_same(f, plain(v, true));
}

TEST(OverlapFigure, WithoutOverlapEveryStepIsTheReference) {
  auto v = run(0.020, 0.010, 0.010);
  for (auto& r : v) r.overlapped = 0;
  const OverlapFigure f = cifar::overlap_figure(v, kWorld, false);
  EXPECT_EQ(f.steps, 6u);
  EXPECT_EQ(f.reference_steps, 6u);
  EXPECT_EQ(f.saving, 0);
  EXPECT_EQ(f.hidden, 0);
  EXPECT_EQ(f.comp_inflation, 0);
  expect_same(f, plain(v, false));
}

TEST(OverlapFigure, NoReferenceStepIsNaN) {
  auto v = run(0.021, 0.014, 0.001);
  v.resize(3 * kWorld);  // steps 0, 1 (warm-up) and 2 (held back): nothing overlapped counts
  const OverlapFigure f = cifar::overlap_figure(v, kWorld, true);
  EXPECT_EQ(f.steps, 0u);
  EXPECT_TRUE(std::isnan(f.hidden));
  EXPECT_TRUE(std::isnan(f.saving));
}

}  // namespace
