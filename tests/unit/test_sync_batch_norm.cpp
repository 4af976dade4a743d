// --sync-bn's BatchNorm: two replicas, each over half of a batch in its own thread, summing through
// an in-process stand-in for the ranks' all-reduce, against plain loops over the whole batch
// (tests/reference/reference_resnet.hpp): each replica's output and data gradient are its half of
// the whole batch's, its weight and bias gradients add up to the whole batch's, and both replicas'
// running statistics are the whole batch's. With the ReLU fused or not, in a plain and a blocked
// layout (the convolutions before a BatchNorm hand it a blocked one).
#include <gtest/gtest.h>

#include <algorithm>
#include <barrier>
#include <cmath>
#include <random>
#include <span>
#include <thread>
#include <tuple>
#include <vector>

#include "cifar_mpi/model/layers/batch_norm.hpp"
#include "engine_fixture.hpp"
#include "reference/reference_resnet.hpp"

namespace cifar {
namespace {

using dnnl::memory;
using testing::Engine;
using testing::expect_max_abs_error;
using testing::from_plain;
using testing::random_vector;
using testing::to_plain;

// What MPI_Allreduce(SUM) does across the replicas, for threads of one process.
class ThreadSum {
 public:
  explicit ThreadSum(int replicas) : slots_(static_cast<size_t>(replicas)), sync_(replicas) {}
  void operator()(int replica, std::span<double> values) {
    slots_[static_cast<size_t>(replica)].assign(values.begin(), values.end());
    sync_.arrive_and_wait();  // every replica's values are in
    std::fill(values.begin(), values.end(), 0.0);
    for (const auto& s : slots_)
      for (size_t i = 0; i < values.size(); ++i) values[i] += s[i];
    sync_.arrive_and_wait();  // every replica has read them
  }

 private:
  std::vector<std::vector<double>> slots_;
  std::barrier<> sync_;
};

class SyncBatchNormVsLoops : public ::testing::TestWithParam<std::tuple<bool, memory::format_tag>> {};

TEST_P(SyncBatchNormVsLoops, TwoReplicasGiveTheWholeBatchs) {
  const auto [relu, tag] = GetParam();
  constexpr int R = 2, B = 4, C = 8, H = 5, W = 5, HW = H * W, b = B / R;
  const size_t half = size_t(b) * C * HW;
  const auto x = random_vector(size_t(B) * C * HW, 1, -2.f, 3.f);
  const auto dy = random_vector(x.size(), 6);
  const auto gamma = random_vector(C, 2, 0.5f, 1.5f), beta = random_vector(C, 3);
  const auto rm0 = random_vector(C, 4), rv0 = random_vector(C, 5, 0.5f, 2.f);

  // The whole batch by plain loops.
  const auto ref = reference::batch_norm_forward(x, B, C, HW, gamma, beta);
  auto y = ref.y;
  auto dy_pre = dy;  // through the ReLU's mask
  if (relu)
    for (size_t i = 0; i < y.size(); ++i) {
      dy_pre[i] = y[i] > 0 ? dy[i] : 0.0f;
      y[i] = std::max(y[i], 0.0f);
    }
  const auto g = reference::batch_norm_backward(x, dy_pre, B, C, HW, gamma);

  struct Replica {
    std::vector<float> gamma, beta, dgamma, dbeta, rm, rv, dst, dx;
  };
  std::vector<Replica> out(R);
  ThreadSum sum(R);
  std::vector<std::thread> threads;
  for (int r = 0; r < R; ++r)
    threads.emplace_back([&, r] {
      Engine e;
      Replica& o = out[static_cast<size_t>(r)];
      o.gamma = gamma, o.beta = beta, o.rm = rm0, o.rv = rv0;
      o.dgamma.assign(C, 0.f), o.dbeta.assign(C, 0.f);
      memory src({{b, C, H, W}, memory::data_type::f32, tag}, e.eng);
      memory diff_src({{b, C, H, W}, memory::data_type::f32, tag}, e.eng);
      BatchNorm bn("bn", e.eng, src, diff_src, o.gamma.data(), o.beta.data(), o.dgamma.data(), o.dbeta.data(),
                   o.rm.data(), o.rv.data(), relu, [&sum, r](std::span<double> v) { sum(r, v); });
      from_plain({x.begin() + r * half, x.begin() + (r + 1) * half}, src, e);
      bn.forward(e.stream);
      o.dst = to_plain(bn.dst(), e);
      from_plain({dy.begin() + r * half, dy.begin() + (r + 1) * half}, bn.diff_dst(), e);
      bn.backward(e.stream);
      e.stream.wait();
      o.dx = to_plain(diff_src, e);
    });
  for (auto& t : threads) t.join();

  std::vector<float> dgamma(C, 0.f), dbeta(C, 0.f);
  for (int r = 0; r < R; ++r) {
    const Replica& o = out[static_cast<size_t>(r)];
    const std::string who = "replica " + std::to_string(r) + " ";
    expect_max_abs_error(o.dst, std::span(y).subspan(r * half, half), 2e-5, who + "dst");
    expect_max_abs_error(o.dx, std::span(g.dx).subspan(r * half, half), 2e-5, who + "diff_src");
    const double n = double(B) * HW;  // the global batch's count
    for (int c = 0; c < C; ++c) {
      EXPECT_NEAR(o.rm[c], 0.9 * rm0[c] + 0.1 * ref.mean[c], 1e-6) << who << "running_mean " << c;
      EXPECT_NEAR(o.rv[c], 0.9 * rv0[c] + 0.1 * ref.var[c] * n / (n - 1), 1e-5) << who << "running_var " << c;
      dgamma[c] += o.dgamma[c], dbeta[c] += o.dbeta[c];
    }
  }
  expect_max_abs_error(dgamma, g.dgamma, 5e-5, "diff weight, summed over the replicas");
  expect_max_abs_error(dbeta, g.dbeta, 5e-5, "diff bias, summed over the replicas");
}

INSTANTIATE_TEST_SUITE_P(ReluAndLayout, SyncBatchNormVsLoops,
                         ::testing::Combine(::testing::Bool(),
                                            ::testing::Values(memory::format_tag::nchw, memory::format_tag::nChw8c)));

}  // namespace
}  // namespace cifar
