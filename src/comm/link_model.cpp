#include "cifar_mpi/comm/link_model.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>

#include "cifar_mpi/comm/allreduce.hpp"
#include "cifar_mpi/util/clock.hpp"
#include "cifar_mpi/util/error.hpp"
#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

size_t LinkModel::best(size_t bytes) const {
  if (algorithms.empty()) throw Error("link model without algorithms");
  size_t b = 0;
  for (size_t i = 1; i < algorithms.size(); ++i)
    if (algorithms[i].cost.time(bytes) < algorithms[b].cost.time(bytes)) b = i;
  return b;
}

std::string LinkModel::summary() const {
  std::string s;
  char buf[160];
  for (const auto& a : algorithms) {
    std::snprintf(buf, sizeof buf, "%s%s %.1f us + %.3f ns/B", s.empty() ? "" : ", ", a.name.c_str(),
                  a.cost.alpha * 1e6, a.cost.beta * 1e9);
    s += buf;
  }
  return s;
}

LinkCost fit_alpha_beta(std::span<const double> bytes, std::span<const double> seconds) {
  const size_t n = std::min(bytes.size(), seconds.size());
  if (n == 0) throw Error("fit_alpha_beta: no points");
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) mx += bytes[i], my += seconds[i];
  mx /= static_cast<double>(n), my /= static_cast<double>(n);
  double sxx = 0, sxy = 0;
  for (size_t i = 0; i < n; ++i) sxx += (bytes[i] - mx) * (bytes[i] - mx), sxy += (bytes[i] - mx) * (seconds[i] - my);
  LinkCost c;
  c.beta = sxx > 0 ? std::max(0.0, sxy / sxx) : 0.0;
  c.alpha = my - c.beta * mx;
  if (c.alpha < 0) {  // refit through the origin: time = beta * bytes
    double sx2 = 0, sx1y = 0;
    for (size_t i = 0; i < n; ++i) sx2 += bytes[i] * bytes[i], sx1y += bytes[i] * seconds[i];
    c.alpha = 0;
    c.beta = sx2 > 0 ? std::max(0.0, sx1y / sx2) : 0.0;
  }
  return c;
}

std::vector<AllreduceStrategy> auto_candidates() {
  std::vector<AllreduceStrategy> out;
  for (const AllreduceRow& row : allreduce_table())
    if (row.strategy != AllreduceStrategy::naive && std::find(out.begin(), out.end(), row.strategy) == out.end())
      out.push_back(row.strategy);
  return out;
}

namespace {

constexpr size_t kRepeats = 3;  // timed, after one untimed warm-up
// 4 KiB, 64 KiB, 512 KiB, 1 MiB: latency- to bandwidth-bound, up to the trainer's largest buckets.
constexpr size_t kSizes[] = {1024, 16384, 131072, 262144};
constexpr size_t kMinSizes = 2;         // a line needs two sizes, whatever the budget says
constexpr double kProbeBudget = 0.5;    // s for all candidates together

// One reduction of `count` floats, the slowest rank's seconds (the same value on every rank).
double time_once(Allreduce& algo, std::vector<float>& data, std::vector<float>& scratch, size_t count,
                 MPI_Comm comm) {
  MPI_CHECK(MPI_Barrier(comm));
  const double t0 = now_seconds();
  algo.start(data.data(), count, scratch.data());
  algo.wait();
  double t = now_seconds() - t0;
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, comm));
  return t;
}

// Sizes in the order 4 KiB, 512 KiB (the two a line needs), then 64 KiB and 1 MiB while this
// candidate's share of the budget lasts. The elapsed time is a sum of agreed (MPI_MAX) times, so
// every rank stops at the same size.
AlgorithmCost probe_one(AllreduceStrategy s, WireDtype wire, RingLayout layout, MPI_Comm comm, int host_color,
                        double budget) {
  ChosenAllreduce chosen = make_allreduce(s, wire, layout, comm, host_color);
  const size_t largest = *std::max_element(std::begin(kSizes), std::end(kSizes));
  std::vector<float> data(largest, 1.0f / 1024), scratch(chosen.algo->scratch_floats(largest));
  std::vector<double> xs, ys;
  double spent = 0;
  for (size_t count : {kSizes[0], kSizes[2], kSizes[1], kSizes[3]}) {
    if (xs.size() >= kMinSizes && spent > budget) break;
    spent += time_once(*chosen.algo, data, scratch, count, comm);  // warm-up: connections, caches
    double best = std::numeric_limits<double>::infinity();
    for (size_t r = 0; r < kRepeats; ++r) {
      const double t = time_once(*chosen.algo, data, scratch, count, comm);
      spent += t;
      best = std::min(best, t);
    }
    xs.push_back(static_cast<double>(count * sizeof(float)));
    ys.push_back(best);
  }
  return AlgorithmCost{s, chosen.row->name, fit_alpha_beta(xs, ys)};
}

}  // namespace

LinkModel probe_link_model(std::span<const AllreduceStrategy> candidates, WireDtype wire, RingLayout layout,
                           MPI_Comm comm, int host_color) {
  LinkModel m;
  const double share = kProbeBudget / static_cast<double>(std::max<size_t>(1, candidates.size()));
  for (AllreduceStrategy s : candidates) m.algorithms.push_back(probe_one(s, wire, layout, comm, host_color, share));
  // The fits are computed from agreed numbers already; rank 0's are sent anyway, so that no
  // compiler or library difference between nodes can make two ranks choose differently.
  std::vector<double> ab;
  for (const auto& a : m.algorithms) ab.push_back(a.cost.alpha), ab.push_back(a.cost.beta);
  MPI_CHECK(MPI_Bcast(ab.data(), static_cast<int>(ab.size()), MPI_DOUBLE, 0, comm));
  for (size_t i = 0; i < m.algorithms.size(); ++i) m.algorithms[i].cost = {ab[2 * i], ab[2 * i + 1]};
  return m;
}

std::string link_model_text(const LinkModel& m) {
  std::ostringstream os;
  os.precision(17);
  os << "# cifar_mpi link model: strategy alpha_s beta_s_per_float32_byte row\n";
  for (const auto& a : m.algorithms) os << to_string(a.strategy) << ' ' << a.cost.alpha << ' ' << a.cost.beta << ' ' << a.name << '\n';
  return os.str();
}

LinkModel read_link_model(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("--link-model " + path + ": cannot open");
  return parse_link_model(in, path);
}

LinkModel parse_link_model(std::istream& in, const std::string& path) {
  LinkModel m;
  std::string line;
  for (int no = 1; std::getline(in, line); ++no) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string strategy, name;
    AlgorithmCost a;
    if (!(ls >> strategy >> a.cost.alpha >> a.cost.beta) || !(a.cost.alpha >= 0) || !(a.cost.beta >= 0))
      throw Error("--link-model " + path + ":" + std::to_string(no) + ": expected '<strategy> <alpha> <beta> <name>'");
    const auto s = strategy_from_string(strategy);
    const auto candidates = auto_candidates();
    if (!s || std::find(candidates.begin(), candidates.end(), *s) == candidates.end()) throw Error("--link-model " + path + ":" + std::to_string(no) + ": unknown strategy '" + strategy + "'");
    a.strategy = *s;
    std::getline(ls >> std::ws, name);
    a.name = name.empty() ? strategy : name;
    m.algorithms.push_back(a);
  }
  if (m.algorithms.empty()) throw Error("--link-model " + path + ": no algorithms");
  return m;
}

}  // namespace cifar
