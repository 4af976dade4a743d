#include "send_less.hpp"

#include <algorithm>
#include <cstdio>

#include "cifar_mpi/comm/wire_dtype.hpp"
#include "cifar_mpi/util/clock.hpp"
#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

namespace {

// Sums over one rank: leaves the buffer as it is (times PowerSGD's local work alone).
class NoAllreduce final : public Allreduce {
 public:
  size_t scratch_floats(size_t) const override { return 0; }
  void start(float*, size_t, float*) override {}
  bool progress() override { return true; }
};

// Seconds of PowerSGD's local work in a step (the best of 3), on zero gradients of the arena.
double time_local_work(const ParamArena& arena, const PowerSgdOptions& options) {
  PowerSgd trial(arena.specs(), options);
  std::vector<float> grads(arena.total_count(), 0.0f);
  NoAllreduce none;
  double best = 1e30;
  for (int i = 0; i < 3; ++i) {
    const double t0 = now_seconds();
    StepCommStats stats;
    trial.reduce(grads, none, 2, stats);
    best = std::min(best, now_seconds() - t0);
  }
  return best;
}

// The link cost of `s` from the model (the best candidate if the model lacks it).
LinkCost cost_of(const LinkModel& link, AllreduceStrategy s, size_t bytes) {
  for (const auto& a : link.algorithms)
    if (a.strategy == s) return a.cost;
  return link.algorithms.at(link.best(bytes)).cost;
}

AllreduceStrategy runnable(AllreduceStrategy asked, AllreduceStrategy planned) {
  AllreduceStrategy s = asked == AllreduceStrategy::auto_ ? planned : asked;
  return s == AllreduceStrategy::naive || s == AllreduceStrategy::auto_ ? AllreduceStrategy::mpi : s;
}

}  // namespace

SendLess::SendLess(const Config& cfg, const ParamArena& arena, AllreduceStrategy planned,
                   const std::optional<LinkModel>& planned_link, const std::optional<LinkModel>& link_file,
                   MPI_Comm comm)
    : cfg_(cfg) {
  MPI_CHECK(MPI_Comm_size(comm, &world_));
  const AllreduceStrategy s = runnable(cfg.allreduce, planned);
  const PowerSgdOptions options{cfg.compress_rank, 2.0, cfg.seed};
  if (world_ > 1 && (cfg.compress == Compression::powersgd || planned_link)) {
    const LinkModel link = planned_link ? *planned_link
                           : link_file  ? *link_file
                                        : probe_link_model(std::vector{s}, cfg.wire_dtype, cfg.ring_layout, comm);
    const PowerSgd layout(arena.specs(), options);
    const size_t total = arena.total_count();
    forecast_ = forecast_compression(cost_of(link, s, total * sizeof(float)), total, layout.floats_per_step(),
                                     time_local_work(arena, options), world_, wire_bytes(cfg.wire_dtype));
  }
  if (cfg.compress == Compression::none && cfg.local_sgd == 0) return;
  if (cfg.compress == Compression::powersgd) powersgd_.emplace(arena.specs(), options);
  algo_ = make_allreduce(s, cfg.wire_dtype, cfg.ring_layout, comm);
}

void SendLess::set_steps_per_epoch(size_t steps_per_epoch) {
  if (powersgd_) start_ = start_step(cfg_.compress_start, steps_per_epoch);
  if (cfg_.local_sgd > 0) {
    start_ = start_step(cfg_.local_sgd_start, steps_per_epoch);
    averager_.emplace(cfg_.local_sgd, start_);
  }
}

void SendLess::reduce_gradients(std::span<float> grads, StepCommStats& stats) {
  stats = StepCommStats{};
  if (!powersgd_ || world_ == 1) return;  // one rank: its gradients are the average
  StallWatch::Phase watched(watch_, "the PowerSGD all-reduces");
  const Arrival arrival = watch_ ? watch_->arrive(true) : Arrival{};
  powersgd_->reduce(grads, *algo_.algo, world_, stats);
  stats.last_rank = arrival.last_rank, stats.skew = arrival.skew;
  stats.bytes = powersgd_->floats_per_step() * wire_bytes(cfg_.wire_dtype);
}

void SendLess::after_update(std::span<float> params, size_t global_step, StepCommStats& stats) {
  stats = StepCommStats{};
  if (!averager_ || world_ == 1 || !averager_->due(global_step)) return;
  StallWatch::Phase watched(watch_, "the weight averaging");
  const Arrival arrival = watch_ ? watch_->arrive(true) : Arrival{};
  averager_->average(params, *algo_.algo, world_, stats);
  stats.last_rank = arrival.last_rank, stats.skew = arrival.skew;
  stats.bytes = params.size() * wire_bytes(cfg_.wire_dtype);
}

CheckpointExtras SendLess::checkpoint_state(MPI_Comm comm) const {
  if (!powersgd_) return {};
  int rank = 0;
  MPI_CHECK(MPI_Comm_rank(comm, &rank));
  const auto error = powersgd_->error();
  std::vector<float> all(rank == 0 ? error.size() * static_cast<size_t>(world_) : 0);
  MPI_CHECK(MPI_Gather(error.data(), checked_mpi_count(error.size()), MPI_FLOAT, all.data(),
                       checked_mpi_count(error.size()), MPI_FLOAT, 0, comm));
  if (rank != 0 || error.empty()) return {};
  return {{"powersgd/q", {powersgd_->q().begin(), powersgd_->q().end()}}, {"powersgd/error", std::move(all)}};
}

void SendLess::resume_state(const std::string& path, MPI_Comm comm) {
  if (!powersgd_) return;
  int rank = 0;
  MPI_CHECK(MPI_Comm_rank(comm, &rank));
  const auto q = powersgd_->q();
  const auto error = powersgd_->error();
  std::vector<float> saved_q, saved_error;
  int found = 0, saved_world = 0;
  if (rank == 0) {
    saved_q = read_checkpoint_extra(path, "powersgd/q", q.size());
    const size_t count = checkpoint_extra_count(path, "powersgd/error");
    if (!error.empty() && (count == 0 || count % error.size() != 0))
      throw Error(path + ": dataset 'powersgd/error' holds " + std::to_string(count) +
                  " values, not a whole number of this model's " + std::to_string(error.size()));
    saved_world = error.empty() ? world_ : static_cast<int>(count / error.size());
    saved_error = read_checkpoint_extra(path, "powersgd/error", count);
    found = !saved_q.empty() && !saved_error.empty();
  }
  MPI_CHECK(MPI_Bcast(&found, 1, MPI_INT, 0, comm));
  if (!found) return;
  if (rank == 0) std::copy(saved_q.begin(), saved_q.end(), q.begin());
  MPI_CHECK(MPI_Bcast(q.data(), checked_mpi_count(q.size()), MPI_FLOAT, 0, comm));
  MPI_CHECK(MPI_Bcast(&saved_world, 1, MPI_INT, 0, comm));
  if (saved_world == world_) {  // each rank its own error: bitwise the run that was saved
    MPI_CHECK(MPI_Scatter(saved_error.data(), checked_mpi_count(error.size()), MPI_FLOAT, error.data(),
                          checked_mpi_count(error.size()), MPI_FLOAT, 0, comm));
    return;
  }
  // Saved on another number of ranks (--global-batch): every new rank starts from the old ranks'
  // mean error. P = mean(M_r) Q and Q = mean(M_r)^T P use the ranks' M_r = gradient_r + error_r only
  // through their mean, so the mean error is all of the feedback that reaches the update, and it
  // is kept exactly (up to the rounding of the mean).
  if (rank == 0) {
    const size_t n = error.size();
    for (size_t i = 0; i < n; ++i) {
      double sum = 0;
      for (int r = 0; r < saved_world; ++r) sum += saved_error[static_cast<size_t>(r) * n + i];
      error[i] = static_cast<float>(sum / saved_world);
    }
  }
  MPI_CHECK(MPI_Bcast(error.data(), checked_mpi_count(error.size()), MPI_FLOAT, 0, comm));
}

size_t SendLess::bytes_per_step(size_t arena_floats) const {
  if (powersgd_) return powersgd_->floats_per_step() * wire_bytes(cfg_.wire_dtype);
  return arena_floats * wire_bytes(cfg_.wire_dtype);
}

std::string SendLess::describe(size_t arena_floats) const {
  char line[256];
  if (powersgd_)
    std::snprintf(line, sizeof line, "PowerSGD rank %zu from step %zu (%zu matrices compressed, %.1fx fewer bytes), %s",
                  cfg_.compress_rank, start_, powersgd_->matrices().size(),
                  static_cast<double>(arena_floats) / static_cast<double>(powersgd_->floats_per_step()),
                  algo_.description.c_str());
  else
    std::snprintf(line, sizeof line, "local SGD from step %zu, weights averaged every %zu steps, %s", start_,
                  cfg_.local_sgd, algo_.description.c_str());
  return line;
}

}  // namespace cifar
