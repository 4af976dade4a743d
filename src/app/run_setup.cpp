// The set-up that stays fixed for the whole run (run_setup.hpp), one named step after another.
#include "run_setup.hpp"

#include <omp.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <sstream>

#include "cifar_mpi/app/batch_chunks.hpp"
#include "cifar_mpi/app/run_checks.hpp"
#include "cifar_mpi/app/stop_signal.hpp"
#include "cifar_mpi/comm/link_model.hpp"
#include "cifar_mpi/util/atomic_file.hpp"
#include "cifar_mpi/util/clock.hpp"
#include "cifar_mpi/util/mpi_check.hpp"
#include "cifar_mpi/util/mpi_text.hpp"

namespace cifar {

namespace {

int comm_rank(MPI_Comm comm) {
  int r = 0;
  MPI_CHECK(MPI_Comm_rank(comm, &r));
  return r;
}

int comm_size(MPI_Comm comm) {
  int n = 1;
  MPI_CHECK(MPI_Comm_size(comm, &n));
  return n;
}

std::string iso8601_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[40], zone[8];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::strftime(zone, sizeof zone, "%z", &tm);  // +hhmm -> +hh:mm
  const std::string z = zone;
  return std::string(buf) + (z.size() == 5 ? z.substr(0, 3) + ":" + z.substr(3) : z);
}

// An output must be writable before hours of training, not after (util/atomic_file.hpp), and two
// outputs must not share a name: the one written last would silently replace the other.
void check_outputs(const Config& cfg) {
  std::vector<std::pair<std::string, std::string>> outputs;
  for (const auto& [option, path] : {std::pair{"--save-weights", &cfg.save_weights},
                                     std::pair{"--checkpoint", &cfg.checkpoint}, std::pair{"--trace", &cfg.trace},
                                     std::pair{"--metrics", &cfg.metrics}}) {
    if (path->empty()) continue;
    if (std::string(option) != "--metrics") check_can_write(option, *path);  // metrics: MetricsFile's own check
    const std::string canonical = std::filesystem::weakly_canonical(std::filesystem::absolute(*path)).string();
    for (const auto& [other, other_path] : outputs)
      if (other_path == canonical)
        throw Error("invalid configuration: " + other + " and " + option + " both name " + *path +
                    ": give each output its own file");
    outputs.emplace_back(option, canonical);
  }
}

// The per-rank batch: --batch-size, or --global-batch split evenly across the ranks. The options
// were agreed already, so every rank refuses an uneven split together (said once).
size_t per_rank_batch(const Config& cfg, int world) {
  if (cfg.global_batch == 0) return cfg.batch_size;
  if (cfg.global_batch % static_cast<size_t>(world) != 0)
    throw CollectiveError("invalid configuration: --global-batch " + std::to_string(cfg.global_batch) +
                " does not divide evenly across " + std::to_string(world) + " ranks");
  return cfg.global_batch / static_cast<size_t>(world);
}

// The process's threads and the checks that need no data: the per-rank batch, the output
// folders; then the stop signals are caught (a signal now checkpoints after the first step).
size_t prepare_process(const Config& cfg, int world) {
  omp_set_num_threads(cfg.threads);
  const size_t batch = per_rank_batch(cfg, world);
  // Without --global-batch parse_config has refused it already. Clamped, it would run (and
  // record) another configuration than the one given. Every rank refuses it together.
  if (cfg.micro_batch > batch)
    throw CollectiveError("invalid configuration: --micro-batch " + std::to_string(cfg.micro_batch) +
                          " exceeds the per-rank batch " + std::to_string(batch) +
                          (cfg.global_batch ? " (--global-batch " + std::to_string(cfg.global_batch) + " over " +
                                                  std::to_string(world) + (world == 1 ? " rank)" : " ranks)")
                                            : std::string()) +
                          ": give at most " + std::to_string(batch) + ", or 0 for one pass");
  check_outputs(cfg);
  install_stop_signal_handlers();
  return batch;
}

bool agree_on_metrics(bool have, MPI_Comm comm) {
  int with_metrics = have ? 1 : 0;  // rank 0 decides; gathering the environment is collective
  MPI_CHECK(MPI_Bcast(&with_metrics, 1, MPI_INT, 0, comm));
  return with_metrics != 0;
}

// The lr policy of the options; the global batch decides the scaling. The schedule spans
// --epochs whatever --max-steps or --target-accuracy end the run at (it does not depend on
// stopping early).
LrScheduleOptions schedule_options(const Config& cfg, size_t global_batch) {
  LrScheduleOptions o;
  o.base_lr = cfg.lr;
  o.scaling = cfg.lr_scaling;
  o.global_batch = global_batch;
  o.kind = cfg.lr_schedule;
  o.warmup_epochs = cfg.warmup_epochs;
  o.step_epochs = cfg.lr_step_epochs;
  o.gamma = cfg.lr_gamma;
  return o;
}

size_t count_steps_per_epoch(const Config& cfg, size_t samples, size_t batch) {
  const size_t steps = cfg.drop_last ? samples / batch : (samples + batch - 1) / batch;
  if (steps == 0)
    throw Error("invalid configuration: --batch-size " + std::to_string(batch) + " exceeds the " +
                std::to_string(samples) + " images of a rank's shard with --drop-last");
  return steps;
}

size_t count_planned_steps(const Config& cfg, size_t steps_per_epoch) {
  const size_t whole = steps_per_epoch * static_cast<size_t>(cfg.epochs);
  return cfg.max_steps > 0 ? std::min(static_cast<size_t>(cfg.max_steps), whole) : whole;
}

}  // namespace

TrainingData::TrainingData(const Config& cfg, MPI_Comm comm, bool root) {
  const double t_load = now_seconds();
  train = load_cifar_train(cfg.data_dir);
  if (cfg.eval) test = load_cifar_test(cfg.data_dir);
  // --data-dir may differ between ranks (node-local copies), the data set's size may not.
  long long n[4] = {static_cast<long long>(train.size()), static_cast<long long>(test.size()),
                    -static_cast<long long>(train.size()), -static_cast<long long>(test.size())};
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, n, 4, MPI_LONG_LONG, MPI_MAX, comm));
  if (n[0] != -n[2] || n[1] != -n[3])
    throw CollectiveError("the ranks loaded data sets of different sizes (" + std::to_string(-n[2]) + " to " +
                          std::to_string(n[0]) + " training, " + std::to_string(-n[3]) + " to " +
                          std::to_string(n[1]) + " test images): check --data-dir on every node");
  if (root)
    spdlog::info("data: {} training and {} test images from {} ({:.2f} s)", train.size(), test.size(),
                 cfg.data_dir, now_seconds() - t_load);
}

RunSetup make_run_setup(const Config& cfg, MPI_Comm comm, std::optional<MetricsFile>& metrics) {
  const int rank = comm_rank(comm), world = comm_size(comm);
  const bool root = rank == 0;
  std::string start_time = iso8601_now();
  const size_t batch = prepare_process(cfg, world);
  const size_t pass = cfg.micro_batch > 0 && cfg.micro_batch < batch ? cfg.micro_batch : batch;
  // The metrics file's path is checked before anything slow, so a bad one fails at once.
  if (root && !cfg.metrics.empty()) metrics.emplace(cfg.metrics, cfg.force);
  // A --link-model file is read here, once, on rank 0 (a bad one fails at start-up whatever N and
  // the options are); every rank parses rank 0's text, so the planning and the compression
  // forecast see one model even where the other nodes have no such file.
  std::optional<LinkModel> link_file;
  if (!cfg.link_model.empty()) {
    std::istringstream text(broadcast_text(root ? link_model_text(read_link_model(cfg.link_model)) : "", 0, comm));
    link_file = parse_link_model(text, cfg.link_model);
  }
  const bool with_metrics = agree_on_metrics(metrics.has_value(), comm);                // collective
  RunEnvironment env = with_metrics ? gather_run_environment(comm) : RunEnvironment{};  // collective
  TrainingData data(cfg, comm, root);                                                   // collective
  DistributedSampler sampler(data.train.size(), world, rank, cfg.shuffle, cfg.seed, cfg.drop_last);
  const size_t samples = sampler.num_samples();
  const size_t steps_per_epoch = count_steps_per_epoch(cfg, samples, batch);
  LrSchedule schedule(schedule_options(cfg, batch * static_cast<size_t>(world)), steps_per_epoch,
                      static_cast<size_t>(cfg.epochs));
  return RunSetup{.cfg = cfg,
                  .comm = comm,
                  .rank = rank,
                  .world = world,
                  .root = root,
                  .start_time = std::move(start_time),
                  .batch = batch,
                  .pass = pass,
                  .with_metrics = with_metrics,
                  .link_file = std::move(link_file),
                  .env = std::move(env),
                  .data = std::move(data),
                  .checkpoint_path = cfg.checkpoint.empty() ? "checkpoint.h5" : cfg.checkpoint,
                  .sampler = std::move(sampler),
                  .samples = samples,
                  .steps_per_epoch = steps_per_epoch,
                  .planned_steps = count_planned_steps(cfg, steps_per_epoch),
                  .schedule = std::move(schedule)};
}

std::vector<size_t> step_chunks(const RunSetup& setup, size_t images) {
  return batch_chunks(images, setup.world, kSmallestChunk, setup.batch);
}

std::vector<size_t> epoch_order(const RunSetup& setup, int epoch) {
  if (!setup.draws_chunks()) return setup.sampler.indices(static_cast<uint64_t>(epoch));
  std::vector<std::vector<size_t>> ranks;
  for (int r = 0; r < setup.world; ++r)
    ranks.push_back(DistributedSampler(setup.data.train.size(), setup.world, r, setup.cfg.shuffle, setup.cfg.seed,
                                       setup.cfg.drop_last)
                        .indices(static_cast<uint64_t>(epoch)));
  std::vector<size_t> order;
  order.reserve(setup.samples * static_cast<size_t>(setup.world));
  for (size_t first = 0; first < setup.samples; first += setup.batch)
    for (const auto& mine : ranks)
      order.insert(order.end(), mine.begin() + static_cast<long>(first),
                   mine.begin() + static_cast<long>(std::min(first + setup.batch, setup.samples)));
  return order;
}

}  // namespace cifar
