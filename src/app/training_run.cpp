// The set-up of a run: each member of TrainingRun is built by the helper beside it, in the order
// of the declaration (see training_run.hpp).
#include "training_run.hpp"

#include <omp.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>

#include "cifar_mpi/app/batch_chunks.hpp"
#include "cifar_mpi/app/run_checks.hpp"
#include "cifar_mpi/app/stop_signal.hpp"
#include "cifar_mpi/comm/buffer_broadcast.hpp"
#include "cifar_mpi/model/conv_probe.hpp"
#include "cifar_mpi/model/weights_io.hpp"
#include "cifar_mpi/util/clock.hpp"
#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

static_assert(Network::kClasses == kNumClasses && Network::kInputChannels == kImageChannels &&
                  Network::kInputSide == kImageSide,
              "the network's input and output must match the data set");

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

// An output file's directory must exist and be writable before hours of training, not after.
// (access() reports a read-only file system even to root, who ignores permission bits.)
void check_output_directory(const std::string& option, const std::string& path) {
  if (path.empty()) return;
  const auto dir = std::filesystem::absolute(path).parent_path();
  if (!std::filesystem::is_directory(dir))
    throw Error(option + " " + path + ": directory " + dir.string() + " does not exist");
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    throw Error(option + " " + path + ": directory " + dir.string() + " is not writable");
}

// The per-rank batch: --batch-size, or --global-batch split evenly across the ranks.
size_t per_rank_batch(const Config& cfg, int world) {
  if (cfg.global_batch == 0) return cfg.batch_size;
  if (cfg.global_batch % static_cast<size_t>(world) != 0)
    throw Error("invalid configuration: --global-batch " + std::to_string(cfg.global_batch) +
                " does not divide evenly across " + std::to_string(world) + " ranks");
  return cfg.global_batch / static_cast<size_t>(world);
}

// The process's threads and the checks that need no data: the per-rank batch, the output
// folders; then the stop signals are caught (a signal now checkpoints after the first step).
size_t prepare_process(const Config& cfg, int world) {
  omp_set_num_threads(cfg.threads);
  const size_t batch = per_rank_batch(cfg, world);
  check_output_directory("--save-weights", cfg.save_weights);
  check_output_directory("--checkpoint", cfg.checkpoint);
  check_output_directory("--trace", cfg.trace);
  install_stop_signal_handlers();
  return batch;
}

// The metrics file's path is checked before anything slow, so a bad one fails at once.
std::optional<MetricsFile> open_metrics(const Config& cfg, bool root) {
  std::optional<MetricsFile> metrics;
  if (root && !cfg.metrics.empty()) metrics.emplace(cfg.metrics, cfg.force);
  return metrics;
}

bool agree_on_metrics(bool have, MPI_Comm comm) {
  int with_metrics = have ? 1 : 0;  // rank 0 decides; gathering the environment is collective
  MPI_CHECK(MPI_Bcast(&with_metrics, 1, MPI_INT, 0, comm));
  return with_metrics != 0;
}

// Rank 0's weights are everyone's: the replicas start identical and stay so.
ParamArena& share_initial_weights(ParamArena& arena, const Config& cfg, bool root, MPI_Comm comm) {
  const ModelSpec& model = find_model(cfg.model);
  model.register_tensors(arena);
  if (root) {
    if (cfg.init_weights.empty())
      model.initialize(arena, cfg.seed);
    else
      load_weights(arena, cfg.init_weights);
  }
  MPI_CHECK(MPI_Bcast(arena.params().data(), checked_mpi_count(arena.total_count()), MPI_FLOAT, 0, comm));
  broadcast_buffers(arena, comm);
  return arena;
}

// --compute-dtype bf16 needs bf16 arithmetic in oneDNN's effective ISA on every rank. All ranks
// learn the verdict together (a CollectiveError: rank 0 says it in one line and all end).
void refuse_bf16_without_cpu_support(MPI_Comm comm) {
  int lacking = cpu_has_native_bf16() ? 0 : 1;
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &lacking, 1, MPI_INT, MPI_SUM, comm));
  if (lacking == 0) return;
  int world = 1;
  MPI_CHECK(MPI_Comm_size(comm, &world));
  throw CollectiveError("--compute-dtype bf16 needs avx512_bf16 or AMX, and oneDNN's effective ISA has neither on " +
                        std::to_string(lacking) + " of " + std::to_string(world) + " rank(s) (rank 0's is " +
                        effective_cpu_isa_name() + "; ONEDNN_MAX_CPU_ISA can lower it): use --compute-dtype fp32");
}

// The convolutions' algorithms and compute type. Different algorithms give different bits, so
// with --conv-algo auto rank 0 alone probes and every rank runs its choice (broadcast).
NetworkOptions choose_network_options(const Config& cfg, const dnnl::engine& eng, size_t batch, bool root,
                                      MPI_Comm comm) {
  if (cfg.compute_dtype == ComputeDtype::bf16) refuse_bf16_without_cpu_support(comm);
  const std::span<const ConvShape> convs = find_model(cfg.model).convs;
  if (cfg.conv_algo != ConvAlgoRequest::auto_) {
    const ConvAlgo a = cfg.conv_algo == ConvAlgoRequest::winograd ? ConvAlgo::winograd : ConvAlgo::direct;
    if (root && a != ConvAlgo::direct) spdlog::info("conv: {} in every pass of every convolution", conv_algo_name(a));
    return uniform_conv_options(a, cfg.compute_dtype, convs);
  }
  NetworkOptions o;
  o.dtype = cfg.compute_dtype;
  const size_t n = convs.size();
  std::vector<int> choice(3 * n);  // per layer: forward, backward data, backward weights (ConvAlgo)
  if (root) {
    const double t0 = now_seconds();
    const auto probes = probe_conv_algorithms(eng, convs, batch, cfg.compute_dtype);
    for (size_t i = 0; i < n; ++i) {
      spdlog::info("conv probe {}", probes[i].summary());
      choice[3 * i] = static_cast<int>(probes[i].chosen.forward);
      choice[3 * i + 1] = static_cast<int>(probes[i].chosen.backward_data);
      choice[3 * i + 2] = static_cast<int>(probes[i].chosen.backward_weights);
    }
    spdlog::info("conv probe: {:.2f} s at batch {}", now_seconds() - t0, batch);
  }
  MPI_CHECK(MPI_Bcast(choice.data(), checked_mpi_count(3 * n), MPI_INT, 0, comm));
  for (size_t i = 0; i < n; ++i)
    o.conv[convs[i].name] = {static_cast<ConvAlgo>(choice[3 * i]), static_cast<ConvAlgo>(choice[3 * i + 1]),
                                         static_cast<ConvAlgo>(choice[3 * i + 2])};
  return o;
}

// The metrics file's model group: tensors in arena (= backward) order, the buckets as reduced,
// the layers (what tools/cifar_tools/cost_model reads instead of constants).
ModelInfo describe_model(const ParamArena& arena, const GradientReducer& reducer, const ReductionPlan& plan,
                         const Network& net) {
  const std::vector<Bucket>& buckets = reducer.buckets();
  ModelInfo m;
  std::vector<TensorSpec> specs = arena.specs();
  std::sort(specs.begin(), specs.end(), [](const auto& a, const auto& b) { return a.offset < b.offset; });
  for (const TensorSpec& t : specs)
    m.tensor_names.push_back(t.name), m.tensor_offsets.push_back(t.offset), m.tensor_floats.push_back(t.count);
  for (const Bucket& b : buckets) m.bucket_offsets.push_back(b.offset), m.bucket_floats.push_back(b.count);
  for (const auto& layer : net.layers()) m.layer_names.push_back(layer->name());
  for (size_t k = 0; k < buckets.size(); ++k) m.bucket_algorithms.push_back(reducer.bucket_algorithm(k));
  m.plan_source = plan.source;
  if (plan.link)
    for (const auto& a : plan.link->algorithms)
      m.link_algorithms.push_back(a.name), m.link_alpha.push_back(a.cost.alpha), m.link_beta.push_back(a.cost.beta);
  for (const ReadyPoint& p : plan.ready) m.ready_floats.push_back(p.floats), m.ready_time.push_back(p.time);
  return m;
}

// The plan's line: where it came from, the fitted link, each bucket's size and all-reduce.
void log_plan(const ReductionPlan& plan, const GradientReducer& reducer) {
  std::string buckets;
  for (size_t k = 0; k < reducer.buckets().size(); ++k)
    buckets += fmt::format("{}{:.3f} MB {}", k ? ", " : "", reducer.buckets()[k].count * sizeof(float) / 1e6,
                           reducer.bucket_algorithm(k));
  spdlog::info("reduction plan ({}{}{}): {}{}", plan.source,
               plan.probe_seconds > 0 ? fmt::format(", link probe {:.3f} s", plan.probe_seconds) : std::string(),
               plan.timing_seconds > 0 ? fmt::format(", timed backward {:.3f} s", plan.timing_seconds) : std::string(),
               buckets,
               plan.link ? "; link: " + plan.link->summary() : std::string());
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

namespace {

// The smallest chunk --balance dynamic cuts a step into: 8 images take ~1.2 ms on one core, the
// most by which the ranks' ends of a step then differ, while passes this small still run at the
// speed of whole batches.
constexpr size_t kSmallestChunk = 8;

std::unique_ptr<SharedCounter> make_counter(const Config& cfg, MPI_Comm comm) {
  if (cfg.balance != Config::Balance::dynamic) return nullptr;
  try {
    return std::make_unique<SharedCounter>(comm);
  } catch (const Error& e) {
    throw Error(std::string("--balance dynamic: ") + e.what() + " (use --balance static)");
  }
}

}  // namespace

std::vector<size_t> step_chunks(const TrainingRun& run, size_t images) {
  return batch_chunks(images, run.world, kSmallestChunk, run.batch);
}

std::vector<size_t> epoch_order(const TrainingRun& run, int epoch) {
  if (!run.counter) return run.sampler.indices(static_cast<uint64_t>(epoch));
  std::vector<std::vector<size_t>> ranks;
  for (int r = 0; r < run.world; ++r)
    ranks.push_back(DistributedSampler(run.data.train.size(), run.world, r, run.cfg.shuffle, run.cfg.seed,
                                       run.cfg.drop_last)
                        .indices(static_cast<uint64_t>(epoch)));
  std::vector<size_t> order;
  order.reserve(run.samples * static_cast<size_t>(run.world));
  for (size_t first = 0; first < run.samples; first += run.batch)
    for (const auto& mine : ranks)
      order.insert(order.end(), mine.begin() + static_cast<long>(first),
                   mine.begin() + static_cast<long>(std::min(first + run.batch, run.samples)));
  return order;
}

TrainingRun::TrainingRun(const Config& cfg_, MPI_Comm comm_)
    : cfg(cfg_),
      comm(comm_),
      rank(comm_rank(comm_)),
      world(comm_size(comm_)),
      root(rank == 0),
      start_time(iso8601_now()),
      batch(prepare_process(cfg_, world)),
      pass(cfg_.micro_batch > 0 && cfg_.micro_batch < batch ? cfg_.micro_batch : batch),
      metrics(open_metrics(cfg_, root)),
      with_metrics(agree_on_metrics(metrics.has_value(), comm_)),
      env(with_metrics ? gather_run_environment(comm_) : RunEnvironment{}),
      data(cfg_, comm_, root),
      eng(dnnl::engine::kind::cpu, 0),
      stream(eng),
      nets(find_model(cfg_.model), eng, share_initial_weights(arena, cfg_, root, comm_),
           choose_network_options(cfg_, eng, pass, root, comm_)),
      sgd(arena.total_count(), SgdOptions{cfg_.lr, cfg_.momentum, cfg_.weight_decay, cfg_.nesterov}),
      plan(plan_reduction(cfg_, arena, nets.get(batch), stream, comm_, root)),
      reducer(arena.grads(), plan.buckets, plan.strategies, cfg_.overlap, comm_, cfg_.wire_dtype, cfg_.ring_layout),
      send_less(cfg_, arena, plan.strategies.front(), plan.link, comm_),
      counter(make_counter(cfg_, comm_)),
      identity(resume_identity(cfg_, world, reducer.hierarchical())),
      start(resume()),
      checkpoint_path(cfg_.checkpoint.empty() ? "checkpoint.h5" : cfg_.checkpoint),
      sampler(data.train.size(), world, rank, cfg_.shuffle, cfg_.seed, cfg_.drop_last),
      samples(sampler.num_samples()),
      steps_per_epoch(count_steps_per_epoch(cfg_, samples, batch)),
      planned_steps(count_planned_steps(cfg_, steps_per_epoch)),
      schedule(schedule_options(cfg_, batch * static_cast<size_t>(world)), steps_per_epoch,
               static_cast<size_t>(cfg_.epochs)),
      trace(cfg_.trace.empty() ? 0 : 100),  // the first 100 steps
      labels(batch),
      grad_accum(pass < batch || counter ? arena.total_count() : 0),
      layer_forward(nets.get(batch).layers().size()),
      layer_backward(layer_forward.size()) {
  // Every network is built now, not in the middle of the first epoch.
  // With passes (--micro-batch): those of a full batch and of the epoch's last, partial one.
  nets.get(batch);
  for (const size_t b : {batch, cfg.drop_last ? size_t{0} : samples % batch}) {
    if (b == 0) continue;
    if (counter) {  // --balance dynamic: the chunks of a step of all ranks' b images
      for (const size_t n : step_chunks(*this, b * static_cast<size_t>(world))) nets.get(n);
      continue;
    }
    nets.get(std::min(pass, b));
    if (b % pass != 0) nets.get(b % pass);
  }
  if (root)
    spdlog::info("model: {}, {} parameters in {} tensors ({} gradient bytes), {} bucket(s); {} rank(s) x {} "
                 "thread(s), per-rank batch {}{}, {} steps/epoch, allreduce {}, overlap {}, wire {}",
                 cfg.model, arena.total_count(), arena.specs().size(), arena.total_count() * sizeof(float),
                 reducer.buckets().size(), world,
                 cfg.threads, batch,
                 counter ? " drawn by the ranks in chunks of " + std::to_string(step_chunks(*this, batch * world).front()) +
                               " down to " + std::to_string(kSmallestChunk) + " (--balance dynamic)"
                 : pass < batch ? " in passes of " + std::to_string(pass) : std::string(),
                 steps_per_epoch, reducer.describe(), cfg.overlap ? "on" : "off",
                 to_string(cfg.wire_dtype));
  if (root) log_plan(plan, reducer);
  send_less.set_steps_per_epoch(steps_per_epoch);
  if (root && send_less.on()) spdlog::info("sending less: {}", send_less.describe(arena.total_count()));
  if (root && send_less.forecast())
    spdlog::info("PowerSGD rank {} forecast: {}", cfg.compress_rank, send_less.forecast()->summary());
  if (root && send_less.compressing() && send_less.forecast() && !send_less.forecast()->pays())
    spdlog::warn("--compress powersgd is predicted to make the step slower on this link ({:.1f} ms of all-reduce "
                 "per step instead of {:.1f} ms); running it as asked",
                 send_less.forecast()->compressed * 1e3, send_less.forecast()->plain * 1e3);
  // The lr the run trains with, when it is not the --lr given.
  if (root && cfg.lr_scaling != LrScaling::none)
    spdlog::info("lr {} scaled {} x{:.4g} (global batch {} / {}) = {:.4g}", cfg.lr, to_string(cfg.lr_scaling),
                 schedule.scaled_lr() / cfg.lr, batch * static_cast<size_t>(world), kLrReferenceBatch,
                 schedule.scaled_lr());
  if (root && (cfg.lr_schedule != LrScheduleKind::constant || cfg.warmup_epochs > 0 || cfg.augment != Augment::none ||
               cfg.weight_decay > 0 || cfg.nesterov))
    spdlog::info("policy: lr {:.4g}, schedule {}, warm-up {} epoch(s); weight decay {}, nesterov {}, augment {}",
                 schedule.scaled_lr(), to_string(cfg.lr_schedule), cfg.warmup_epochs, cfg.weight_decay,
                 cfg.nesterov ? "on" : "off", to_string(cfg.augment));
  if (metrics) {
    RunInfo info{config_items(cfg), cfg.meta, to_string(cfg.allreduce), to_string(cfg.wire_dtype),
                 cfg.bucket_mb, cfg.overlap, cfg.eval, cfg.threads, cfg.epochs, cfg.max_steps, env,
                 start_time, arena.total_count(), arena.total_count() * sizeof(float),
                 reducer.buckets().size(), batch, steps_per_epoch};
    info.target_accuracy = cfg.target_accuracy;
    info.start_global_step = start.global_step;
    for (const auto& [layer, a] : nets.options().conv)  // what ran (--conv-algo auto decides at start-up)
      info.meta.emplace_back("conv_algo." + layer, std::string("forward ") + conv_algo_name(a.forward) +
                                                       ", backward-data " + conv_algo_name(a.backward_data) +
                                                       ", backward-weights " + conv_algo_name(a.backward_weights));
    metrics->set_run_info(std::move(info));
  }
  if (metrics) metrics->set_model(describe_model(arena, reducer, plan, nets.get(batch)));
  if (root) checkpoints = std::make_unique<CheckpointWriter>(checkpoint_path, arena, identity, plan.text(world, cfg));
}

// Resuming: rank 0 reads and checks the checkpoint; weights, momentum and position go to all.
CheckpointPosition TrainingRun::resume() {
  CheckpointPosition pos;
  if (cfg.resume.empty()) return pos;
  if (root) pos = load_checkpoint(cfg.resume, arena, sgd.velocity(), identity);
  MPI_CHECK(MPI_Bcast(arena.params().data(), checked_mpi_count(arena.total_count()), MPI_FLOAT, 0, comm));
  MPI_CHECK(MPI_Bcast(sgd.velocity().data(), checked_mpi_count(arena.total_count()), MPI_FLOAT, 0, comm));
  long long p[3] = {pos.epoch, static_cast<long long>(pos.step), static_cast<long long>(pos.global_step)};
  MPI_CHECK(MPI_Bcast(p, 3, MPI_LONG_LONG, 0, comm));
  pos = {static_cast<int>(p[0]), static_cast<size_t>(p[1]), static_cast<size_t>(p[2])};
  send_less.resume_state(cfg.resume, comm);  // PowerSGD's Q and each rank's error
  if (root)
    spdlog::info("resuming {} at epoch {} step {} (global step {})", cfg.resume, pos.epoch + 1, pos.step,
                 pos.global_step);
  return pos;
}

void TrainingRun::start_clock() {
  MPI_CHECK(MPI_Barrier(comm));  // line the ranks' timelines up
  trace.set_origin(now_seconds());
  t_run = now_seconds();
  last_checkpoint_time = t_run;
}

void TrainingRun::write_metrics() {
  if (checkpoints) checkpoints->wait();  // the writer thread may be writing an older copy of the file
  try {
    metrics->write();
  } catch (const Error& e) {
    throw Error("cannot write metrics file " + metrics->path().string() + ": " + e.what());
  }
}

}  // namespace cifar
