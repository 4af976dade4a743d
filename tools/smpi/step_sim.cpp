// step_sim: one training step's timeline replayed under SimGrid SMPI, with the real bucket
// reductions of the comm library, to measure a simulated step time at up to 1024 ranks.
//
//   smpirun ... step_sim --plan PLAN [--poll-us 50] [--steps 2] [--csv FILE]
//
// SMPI runs every rank as a thread of one process and cannot host the trainer's own communication
// thread, so this program is the trainer's step reduced to what sets its time: the per-layer
// compute (spent with smpi_execute_flops at the host's speed, so it counts in simulated time
// whatever smpi/simulate-computation says) and the bucket all-reduces, posted through the Allreduce
// interface (start/progress) as their gradients become ready and polled every --poll-us of
// compute, as the communication thread polls them. One reduction is in flight at a time, in the
// plan's order (the gradient reducer's rule); MPI_Allreduce ("mpi") completes inside start() and
// so blocks the compute here, where the trainer's communication thread would block instead.
//
// PLAN (written by tools/cost_model.py --step-plan, one directive a line, '#' comments):
//   forward <seconds>                 compute before backward
//   backward <layer> <seconds>        one layer's backward, in backward order
//   bucket <floats> <algorithm>       a bucket ready now (after the backward lines above it);
//                                     algorithm: ring, rhd, mpi, hring (the ring's hosts layout:
//                                     hierarchical where several hosts have several ranks),
//                                     hrhd (rhd with the hosts layout, where the table has it)
//   update <seconds>                  compute after the last reduction (optimizer, data)
// Output (rank 0): one line per step, and with --csv a row: ranks,step_s,compute_s,exposed_s.
// The step time is the slowest rank's, from a barrier to the end of its update.
#include <mpi.h>
#include <simgrid/host.h>
#include <smpi/smpi.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cifar_mpi/comm/allreduce.hpp"
#include "cifar_mpi/util/mpi_check.hpp"

namespace {

struct Directive {
  enum Kind { forward, backward, bucket, update } kind;
  double seconds = 0;
  size_t floats = 0;
  std::string algorithm;
};

std::vector<Directive> read_plan(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("step_sim: cannot read plan " + path);
  std::vector<Directive> out;
  std::string line;
  for (int no = 1; std::getline(in, line); ++no) {
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream ss(line);
    std::string word, name;
    if (!(ss >> word)) continue;
    Directive d{};
    bool ok = true;
    if (word == "forward") d.kind = Directive::forward, ok = bool(ss >> d.seconds);
    else if (word == "backward") d.kind = Directive::backward, ok = bool(ss >> name >> d.seconds);
    else if (word == "update") d.kind = Directive::update, ok = bool(ss >> d.seconds);
    else if (word == "bucket") d.kind = Directive::bucket, ok = bool(ss >> d.floats >> d.algorithm);
    else ok = false;
    if (!ok || d.seconds < 0) throw std::runtime_error(path + ":" + std::to_string(no) + ": bad line '" + line + "'");
    out.push_back(d);
  }
  return out;
}

cifar::ChosenAllreduce make(const std::string& name) {
  using S = cifar::AllreduceStrategy;
  using L = cifar::RingLayout;
  static const std::map<std::string, std::pair<S, L>> names = {
      {"ring", {S::ring, L::flat}}, {"hring", {S::ring, L::hosts}}, {"rhd", {S::rhd, L::flat}},
      {"hrhd", {S::rhd, L::hosts}}, {"mpi", {S::mpi, L::flat}}};
  auto it = names.find(name);
  if (it == names.end()) throw std::runtime_error("step_sim: unknown algorithm '" + name + "'");
  cifar::ChosenAllreduce chosen =
      cifar::make_allreduce(it->second.first, cifar::WireDtype::fp32, it->second.second, MPI_COMM_WORLD);
  // A hierarchical name must get a hierarchical row (several hosts of several ranks, and a row for
  // that algorithm in the table): a flat one would be timed under the wrong name.
  if (name[0] == 'h' && chosen.description.find("hierarchical") == std::string::npos)
    throw std::runtime_error("step_sim: " + name + " runs as '" + chosen.description +
                             "' here (not hierarchical: one rank per host, or no such row in the table)");
  return chosen;
}

// The reductions of one step: queued as buckets become ready, run one at a time in that order.
class Reductions {
 public:
  Reductions(std::map<std::string, cifar::ChosenAllreduce>& algos, std::vector<float>& grads,
             std::vector<float>& scratch)
      : algos_(algos), grads_(grads), scratch_(scratch) {}
  void ready(const Directive& d) { queue_.push_back(d); }
  // Advances without blocking (but "mpi" blocks inside start()); true once all queued are done.
  bool poll() {
    for (;;) {
      if (current_ && !current_->progress()) return false;
      current_ = nullptr;
      if (next_ == queue_.size()) return true;
      const Directive& d = queue_[next_++];
      current_ = algos_.at(d.algorithm).algo.get();
      current_->start(grads_.data() + offset_, d.floats, scratch_.data());
      offset_ += d.floats;
    }
  }

 private:
  std::map<std::string, cifar::ChosenAllreduce>& algos_;
  std::vector<float>& grads_;
  std::vector<float>& scratch_;
  std::vector<Directive> queue_;
  size_t next_ = 0, offset_ = 0;
  cifar::Allreduce* current_ = nullptr;
};

// `seconds` of simulated compute on this rank's host: its flops at the host's speed
// (smpi_execute(duration) would scale by smpi/host-speed, not the platform's).
void execute(double seconds) { smpi_execute_flops(seconds * sg_host_get_speed(sg_host_self())); }

// Spends `seconds` of simulated compute, polling the reductions every poll_s.
void compute(double seconds, double poll_s, Reductions& red) {
  while (seconds > 0) {
    const double chunk = std::min(seconds, poll_s);
    execute(chunk);
    seconds -= chunk;
    red.poll();
  }
}

struct StepTime {
  double step = 0, compute = 0;
};

StepTime run_step(const std::vector<Directive>& plan, std::map<std::string, cifar::ChosenAllreduce>& algos,
                  std::vector<float>& grads, std::vector<float>& scratch, double poll_s) {
  Reductions red(algos, grads, scratch);
  StepTime t;
  MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
  const double t0 = MPI_Wtime();
  for (const Directive& d : plan) {
    if (d.kind == Directive::bucket) {
      red.ready(d);
      red.poll();
    } else if (d.kind != Directive::update) {
      compute(d.seconds, poll_s, red);
      t.compute += d.seconds;
    }
  }
  while (!red.poll()) execute(poll_s / 10);  // the reducer's wait at the end of backward
  for (const Directive& d : plan)
    if (d.kind == Directive::update) execute(d.seconds), t.compute += d.seconds;
  t.step = MPI_Wtime() - t0;
  return t;
}

int run(int argc, char** argv) {
  std::string plan_path, csv;
  double poll_us = 50;
  int steps = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("step_sim: " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--plan") plan_path = value();
    else if (a == "--poll-us") poll_us = std::stod(value());
    else if (a == "--steps") steps = std::stoi(value());
    else if (a == "--csv") csv = value();
    else throw std::runtime_error("step_sim: unknown option " + a);
  }
  if (plan_path.empty() || poll_us <= 0 || steps < 1) throw std::runtime_error("step_sim: --plan FILE required; --poll-us > 0, --steps >= 1");
  const std::vector<Directive> plan = read_plan(plan_path);
  int rank = 0, n = 1;
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &n));
  std::map<std::string, cifar::ChosenAllreduce> algos;
  size_t total = 0, largest = 0;
  for (const Directive& d : plan) {
    if (d.kind != Directive::bucket) continue;
    if (!algos.count(d.algorithm)) algos.emplace(d.algorithm, make(d.algorithm));
    total += d.floats;
    largest = std::max(largest, d.floats);
  }
  size_t scratch_floats = 1;
  for (auto& [name, a] : algos) scratch_floats = std::max(scratch_floats, a.algo->scratch_floats(largest));
  std::vector<float> grads(std::max<size_t>(total, 1), 1.0f), scratch(scratch_floats);
  if (rank == 0) {
    std::printf("# step_sim: N=%d, %zu floats in the plan's buckets, poll %g us\n", n, total, poll_us);
    for (auto& [name, a] : algos) std::printf("# %s = %s\n", name.c_str(), a.description.c_str());
  }
  StepTime t;
  for (int s = 0; s < steps; ++s) {
    t = run_step(plan, algos, grads, scratch, poll_us * 1e-6);
    double slowest = 0;
    MPI_CHECK(MPI_Reduce(&t.step, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD));
    t.step = slowest;
    if (rank == 0)
      std::printf("step %d: %.6f s (compute %.6f s, exposed communication %.6f s)\n", s + 1, t.step, t.compute,
                  t.step - t.compute);
  }
  if (rank == 0 && !csv.empty()) {
    FILE* f = std::fopen(csv.c_str(), "w");
    if (!f) throw std::runtime_error("step_sim: cannot write " + csv);
    std::fprintf(f, "ranks,step_s,compute_s,exposed_s\n%d,%.9f,%.9f,%.9f\n", n, t.step, t.compute, t.step - t.compute);
    std::fclose(f);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rc = 0;
  try {
    rc = run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    rc = 2;
  }
  MPI_Finalize();
  return rc;
}
