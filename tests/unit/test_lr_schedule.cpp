// The learning-rate schedule against torch's own schedulers (tests/fixtures/lr_schedule.txt,
// written by tools/cifar_tools/make_lr_fixture.py; committed so the test needs no torch), its statelessness
// (resume), lr scaling, and its rejection of schedules that cannot run.
// Tolerance: |ours - torch| <= 1e-6 * |torch| + 1e-15 (torch steps its schedulers recursively in
// float64; we use the closed forms, so the two differ only by rounding, far below 1e-6).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cifar_mpi/optim/lr_schedule.hpp"
#include "cifar_mpi/util/error.hpp"

namespace cifar {
namespace {

constexpr double kRtol = 1e-6, kAtol = 1e-15;

struct LrCase {
  std::string name;
  LrScheduleOptions options;
  size_t steps_per_epoch = 0, epochs = 0;
  std::vector<double> torch_lr;  // (T) lr of optimizer step t
};

// Reads the fixture's `case` and `lr` lines (format in its header).
std::vector<LrCase> read_lr_fixture() {
  const std::string path = std::string(CIFAR_TEST_FIXTURES_DIR) + "/lr_schedule.txt";
  std::ifstream in(path);
  if (!in) ADD_FAILURE() << "cannot open " << path;
  std::vector<LrCase> cases;
  std::map<std::string, size_t> by_name;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string kind, name;
    fields >> kind >> name;
    if (kind == "case") {
      LrCase c;
      std::string schedule;
      c.name = name;
      fields >> schedule >> c.options.base_lr >> c.options.warmup_epochs >> c.steps_per_epoch >> c.epochs >>
          c.options.step_epochs >> c.options.gamma;
      c.options.kind = parse_lr_schedule(schedule);
      by_name[name] = cases.size();
      cases.push_back(c);
    } else if (kind == "lr") {
      size_t t = 0;
      double lr = 0;
      fields >> t >> lr;
      LrCase& c = cases.at(by_name.at(name));
      EXPECT_EQ(t, c.torch_lr.size()) << line;
      c.torch_lr.push_back(lr);
    }
    EXPECT_FALSE(fields.fail()) << "bad fixture line: " << line;
  }
  return cases;
}

void expect_lr_near(double got, double want, const std::string& where) {
  EXPECT_LE(std::fabs(got - want), kRtol * std::fabs(want) + kAtol) << where << ": ours " << got << ", torch " << want;
}

TEST(LrSchedule, MatchesTorchSchedulersStepByStep) {
  const std::vector<LrCase> cases = read_lr_fixture();
  // Every schedule, with and without warm-up, is in the fixture.
  std::map<std::string, int> seen;
  for (const LrCase& c : cases) seen[to_string(c.options.kind) + (c.options.warmup_epochs > 0 ? "+warmup" : "")]++;
  for (const char* want : {"constant", "constant+warmup", "step", "step+warmup", "cosine", "cosine+warmup", "onecycle"})
    EXPECT_GT(seen[want], 0) << "fixture has no " << want << " case";

  for (const LrCase& c : cases) {
    const LrSchedule schedule(c.options, c.steps_per_epoch, c.epochs);
    ASSERT_EQ(schedule.total_steps(), c.torch_lr.size()) << c.name;
    for (size_t t = 0; t < c.torch_lr.size(); ++t)
      expect_lr_near(schedule.lr_at(t), c.torch_lr[t], c.name + " step " + std::to_string(t));
  }
}

// The fixture's scaled case was given to torch at 4x its lr: linear scaling at batch 512 must
// produce exactly that curve from the unscaled lr.
TEST(LrSchedule, LinearScalingMatchesTorchAtScaledLr) {
  for (const LrCase& c : read_lr_fixture()) {
    if (c.name != "cosine_warmup_scaled_x4") continue;
    LrScheduleOptions options = c.options;
    options.base_lr /= 4;
    options.scaling = LrScaling::linear;
    options.global_batch = 512;
    const LrSchedule schedule(options, c.steps_per_epoch, c.epochs);
    for (size_t t = 0; t < c.torch_lr.size(); ++t)
      expect_lr_near(schedule.lr_at(t), c.torch_lr[t], c.name + " step " + std::to_string(t));
    return;
  }
  FAIL() << "fixture has no cosine_warmup_scaled_x4 case";
}

TEST(LrSchedule, ScalingRelativeToBatch128) {
  LrScheduleOptions options;
  options.base_lr = 0.1;
  options.global_batch = 512;
  options.scaling = LrScaling::none;
  EXPECT_DOUBLE_EQ(LrSchedule(options, 10, 2).scaled_lr(), 0.1);
  options.scaling = LrScaling::linear;
  EXPECT_DOUBLE_EQ(LrSchedule(options, 10, 2).scaled_lr(), 0.4);
  options.scaling = LrScaling::sqrt;
  EXPECT_DOUBLE_EQ(LrSchedule(options, 10, 2).scaled_lr(), 0.2);
  options.global_batch = 64;
  options.scaling = LrScaling::linear;
  EXPECT_DOUBLE_EQ(LrSchedule(options, 10, 2).scaled_lr(), 0.05);
  options.global_batch = 128;
  options.scaling = LrScaling::sqrt;
  EXPECT_DOUBLE_EQ(LrSchedule(options, 10, 2).scaled_lr(), 0.1);
}

// A resumed run builds a fresh schedule and asks for step t: it must get what the uninterrupted
// run used at step t, for every schedule (the schedule keeps no state, so this holds by
// construction; the test pins that down against an accidental cache or counter).
TEST(LrSchedule, ResumeMidScheduleGivesTheSameLr) {
  for (const LrCase& c : read_lr_fixture()) {
    const LrSchedule uninterrupted(c.options, c.steps_per_epoch, c.epochs);
    std::vector<double> run;
    for (size_t t = 0; t < uninterrupted.total_steps(); ++t) run.push_back(uninterrupted.lr_at(t));
    for (size_t resume_at : {size_t{1}, uninterrupted.warmup_steps(), run.size() / 2, run.size() - 1}) {
      const LrSchedule resumed(c.options, c.steps_per_epoch, c.epochs);
      for (size_t t = resume_at; t < run.size(); ++t)
        ASSERT_EQ(resumed.lr_at(t), run[t]) << c.name << " resumed at " << resume_at << ", step " << t;
    }
    // Asking out of order changes nothing either.
    for (size_t t = run.size(); t-- > 0;) ASSERT_EQ(uninterrupted.lr_at(t), run[t]) << c.name << " step " << t;
  }
}

TEST(LrSchedule, WarmupStartsAtLrOverStepsAndReachesLr) {
  LrScheduleOptions options;
  options.base_lr = 0.2;
  options.kind = LrScheduleKind::cosine;
  options.warmup_epochs = 2;
  const LrSchedule schedule(options, 5, 10);
  EXPECT_EQ(schedule.warmup_steps(), 10u);
  EXPECT_DOUBLE_EQ(schedule.lr_at(0), 0.2 / 10);
  EXPECT_DOUBLE_EQ(schedule.lr_at(10), 0.2);  // cosine starts at the full lr once warm-up ends
  for (size_t t = 1; t <= 10; ++t) EXPECT_GT(schedule.lr_at(t), schedule.lr_at(t - 1)) << t;
}

TEST(LrSchedule, ParsesNamesAndRejectsOthers) {
  for (const char* name : {"constant", "step", "cosine", "onecycle"}) EXPECT_EQ(to_string(parse_lr_schedule(name)), name);
  for (const char* name : {"none", "linear", "sqrt"}) EXPECT_EQ(to_string(parse_lr_scaling(name)), name);
  EXPECT_THROW(parse_lr_schedule("cos"), Error);
  EXPECT_THROW(parse_lr_scaling("Linear"), Error);
}

TEST(LrSchedule, RejectsSchedulesThatCannotRun) {
  const auto make = [](auto edit, size_t steps_per_epoch = 10, size_t epochs = 5) {
    LrScheduleOptions options;
    options.kind = LrScheduleKind::step;
    options.step_epochs = 2;
    edit(options);
    return LrSchedule(options, steps_per_epoch, epochs);
  };
  EXPECT_NO_THROW(make([](LrScheduleOptions&) {}));
  EXPECT_THROW(make([](LrScheduleOptions& o) { o.base_lr = 0; }), Error);
  EXPECT_THROW(make([](LrScheduleOptions& o) { o.base_lr = NAN; }), Error);
  EXPECT_THROW(make([](LrScheduleOptions&) {}, 0, 5), Error);
  EXPECT_THROW(make([](LrScheduleOptions&) {}, 10, 0), Error);
  EXPECT_THROW(make([](LrScheduleOptions& o) { o.global_batch = 0; }), Error);
  EXPECT_THROW(make([](LrScheduleOptions& o) { o.step_epochs = 0; }), Error);
  EXPECT_THROW(make([](LrScheduleOptions& o) { o.gamma = 0; }), Error);
  EXPECT_THROW(make([](LrScheduleOptions& o) { o.warmup_epochs = -1; }), Error);
  EXPECT_THROW(make([](LrScheduleOptions& o) { o.warmup_epochs = 5; }), Error);  // the whole run
  // onecycle: no second warm-up, and both phases need length
  EXPECT_THROW(make([](LrScheduleOptions& o) { o.kind = LrScheduleKind::onecycle; o.warmup_epochs = 1; }), Error);
  EXPECT_NO_THROW(make([](LrScheduleOptions& o) { o.kind = LrScheduleKind::onecycle; }));
  EXPECT_THROW(make([](LrScheduleOptions& o) { o.kind = LrScheduleKind::onecycle; }, 1, 3), Error);
  // past the end of the run
  const LrSchedule schedule = make([](LrScheduleOptions&) {});
  EXPECT_NO_THROW(schedule.lr_at(49));
  EXPECT_THROW(schedule.lr_at(50), Error);
}

}  // namespace
}  // namespace cifar
