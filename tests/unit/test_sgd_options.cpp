// SgdMomentum's weight decay, Nesterov and per-step lr against torch.optim.SGD
// (tests/fixtures/sgd_options.txt from tools/cifar_tools/make_lr_fixture.py: 13 float32 weights, 5 steps with
// the lr changed before each, as a schedule would). Tolerance: |ours - torch| <= 1e-6 * |torch|
// + 1e-7 per weight: torch's add(alpha=) may fuse the multiply-add where our loop rounds twice,
// a difference of an ulp or so per step. The plain path (wd 0, no Nesterov) stays bitwise the
// old optimizer; that is checked here against the old loop written out.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cifar_mpi/optim/sgd_momentum.hpp"
#include "cifar_mpi/util/error.hpp"

namespace cifar {
namespace {

struct SgdCase {
  std::string name;
  SgdOptions options;
  std::vector<float> init;                 // (count)
  std::vector<double> lr;                  // (steps)
  std::vector<std::vector<float>> grads;   // (steps, count)
  std::vector<std::vector<float>> after;   // (steps, count) torch's weights after each step
};

std::vector<float> read_floats(std::istringstream& fields) {
  std::vector<float> values;
  float v = 0;
  while (fields >> v) values.push_back(v);
  return values;
}

std::vector<SgdCase> read_sgd_fixture() {
  const std::string path = std::string(CIFAR_TEST_FIXTURES_DIR) + "/sgd_options.txt";
  std::ifstream in(path);
  if (!in) ADD_FAILURE() << "cannot open " << path;
  std::vector<SgdCase> cases;
  std::map<std::string, size_t> by_name;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string kind, name;
    fields >> kind >> name;
    if (kind == "case") {
      SgdCase c;
      int nesterov = 0;
      size_t steps = 0, count = 0;
      c.name = name;
      fields >> c.options.momentum >> c.options.weight_decay >> nesterov >> steps >> count;
      c.options.nesterov = nesterov != 0;
      by_name[name] = cases.size();
      cases.push_back(c);
      continue;
    }
    SgdCase& c = cases.at(by_name.at(name));
    if (kind == "init") {
      c.init = read_floats(fields);
    } else if (kind == "step") {
      size_t k = 0;
      double lr = 0;
      fields >> k >> lr;
      EXPECT_EQ(k, c.lr.size()) << line;
      c.lr.push_back(lr);
      c.grads.push_back(read_floats(fields));
    } else if (kind == "after") {
      size_t k = 0;
      fields >> k;
      EXPECT_EQ(k, c.after.size()) << line;
      c.after.push_back(read_floats(fields));
    }
  }
  return cases;
}

TEST(SgdOptions, MatchesTorchWithWeightDecayNesterovAndChangingLr) {
  const std::vector<SgdCase> cases = read_sgd_fixture();
  ASSERT_EQ(cases.size(), 3u);
  bool saw_both = false;
  for (const SgdCase& c : cases) {
    saw_both |= c.options.weight_decay > 0 && c.options.nesterov;
    ASSERT_EQ(c.grads.size(), 5u) << c.name;
    ASSERT_EQ(c.after.size(), 5u) << c.name;
    SgdOptions options = c.options;
    options.lr = static_cast<float>(c.lr[0]);
    SgdMomentum sgd(c.init.size(), options);
    std::vector<float> w = c.init;
    for (size_t k = 0; k < c.grads.size(); ++k) {
      sgd.set_lr(static_cast<float>(c.lr[k]));
      sgd.step(w, c.grads[k]);
      ASSERT_EQ(c.after[k].size(), w.size());
      for (size_t i = 0; i < w.size(); ++i) {
        const float want = c.after[k][i];
        EXPECT_LE(std::fabs(w[i] - want), 1e-6f * std::fabs(want) + 1e-7f)
            << c.name << " step " << k << " weight " << i << ": ours " << w[i] << ", torch " << want;
      }
    }
  }
  EXPECT_TRUE(saw_both) << "fixture has no case with both weight decay and Nesterov";
}

// With neither option, the step is the original loop, bit for bit, whichever constructor built it.
TEST(SgdOptions, PlainPathIsBitwiseTheOriginalLoop) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  const size_t n = 1001;
  std::vector<float> w0(n);
  for (float& x : w0) x = normal(rng);
  std::vector<float> w_old = w0, w_new = w0, w_opt = w0, v_old(n, 0.0f);
  SgdMomentum legacy(n, 0.01f, 0.9f);
  SgdMomentum with_options(n, SgdOptions{0.01f, 0.9f, 0.0f, false});
  for (int step = 0; step < 4; ++step) {
    std::vector<float> g(n);
    for (float& x : g) x = normal(rng);
    for (size_t i = 0; i < n; ++i) {
      v_old[i] = 0.9f * v_old[i] + g[i];
      w_old[i] -= 0.01f * v_old[i];
    }
    legacy.step(w_new, g);
    with_options.step(w_opt, g);
  }
  for (size_t i = 0; i < n; ++i) {
    ASSERT_EQ(w_new[i], w_old[i]) << i;
    ASSERT_EQ(w_opt[i], w_old[i]) << i;
    ASSERT_EQ(legacy.velocity()[i], v_old[i]) << i;
  }
}

// One step by hand: w = 1, g = 0.5, wd = 0.1, mu = 0.9, lr = 0.1.
//   g' = 0.5 + 0.1 = 0.6; v = 0.6; plain: w = 1 - 0.06 = 0.94;
//   Nesterov: d = 0.6 + 0.9 * 0.6 = 1.14; w = 1 - 0.114 = 0.886
TEST(SgdOptions, OneStepByHand) {
  std::vector<float> w{1.0f}, g{0.5f};
  SgdMomentum decay(1, SgdOptions{0.1f, 0.9f, 0.1f, false});
  decay.step(w, g);
  EXPECT_FLOAT_EQ(w[0], 0.94f);
  EXPECT_FLOAT_EQ(decay.velocity()[0], 0.6f);
  w = {1.0f};
  SgdMomentum nesterov(1, SgdOptions{0.1f, 0.9f, 0.1f, true});
  nesterov.step(w, g);
  EXPECT_FLOAT_EQ(w[0], 0.886f);
}

TEST(SgdOptions, SetLrTakesEffectOnTheNextStep) {
  std::vector<float> w{1.0f}, g{1.0f};
  SgdMomentum sgd(1, 0.1f, 0.0f);
  sgd.step(w, g);
  EXPECT_FLOAT_EQ(w[0], 0.9f);
  sgd.set_lr(0.5f);
  EXPECT_EQ(sgd.lr(), 0.5f);
  sgd.step(w, g);
  EXPECT_FLOAT_EQ(w[0], 0.4f);
}

TEST(SgdOptions, RejectsInvalidOptions) {
  EXPECT_THROW(SgdMomentum(1, SgdOptions{0.1f, 0.0f, 0.0f, true}), Error);  // Nesterov needs momentum
  EXPECT_THROW(SgdMomentum(1, SgdOptions{0.1f, 0.9f, -1e-4f, false}), Error);
  EXPECT_THROW(SgdMomentum(1, SgdOptions{-0.1f, 0.9f, 0.0f, false}), Error);
  SgdMomentum sgd(1, 0.1f, 0.9f);
  EXPECT_THROW(sgd.set_lr(NAN), Error);
}

}  // namespace
}  // namespace cifar
