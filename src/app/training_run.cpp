// The state a run's steps change (training_run.hpp): the model with its reducer, built on the
// fixed set-up (run_setup.cpp), then the resume, then the start-up lines and the metrics file's
// description of the run.
#include "training_run.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <span>

#include "cifar_mpi/app/run_checks.hpp"
#include "cifar_mpi/comm/buffer_broadcast.hpp"
#include "cifar_mpi/comm/replica_sum.hpp"
#include "cifar_mpi/model/conv_probe.hpp"
#include "cifar_mpi/model/weights_io.hpp"
#include "cifar_mpi/util/clock.hpp"
#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

static_assert(Network::kClasses == kNumClasses && Network::kInputChannels == kImageChannels &&
                  Network::kInputSide == kImageSide,
              "the network's input and output must match the data set");

namespace {

// Rank 0's weights are everyone's: the replicas start identical and stay so.
void share_initial_weights(ParamArena& arena, const Config& cfg, bool root, MPI_Comm comm) {
  const ModelSpec& model = find_model(cfg.model);
  model.register_tensors(arena);
  if (root) {
    if (cfg.init_weights.empty() || !cfg.resume.empty())  // a resume overwrites them (and says so)
      model.initialize(arena, cfg.seed);
    else
      load_weights(arena, cfg.init_weights);
  }
  MPI_CHECK(MPI_Bcast(arena.params().data(), checked_mpi_count(arena.total_count()), MPI_FLOAT, 0, comm));
  broadcast_buffers(arena, comm);
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
  int world = 1;
  MPI_CHECK(MPI_Comm_size(comm, &world));
  std::function<void(std::span<double>)> sum_across_replicas;  // --sync-bn (collective: MPI_Comm_dup)
  if (cfg.sync_bn && world > 1) sum_across_replicas = as_function(std::make_shared<const ReplicaSum>(comm));
  const std::span<const ConvShape> convs = find_model(cfg.model).convs;
  if (cfg.conv_algo != ConvAlgoRequest::auto_) {
    const ConvAlgo a = cfg.conv_algo == ConvAlgoRequest::winograd ? ConvAlgo::winograd : ConvAlgo::direct;
    if (root && a != ConvAlgo::direct) spdlog::info("conv: {} in every pass of every convolution", conv_algo_name(a));
    NetworkOptions o = uniform_conv_options(a, cfg.compute_dtype, convs);
    o.sum_across_replicas = sum_across_replicas;
    return o;
  }
  NetworkOptions o;
  o.dtype = cfg.compute_dtype;
  o.sum_across_replicas = sum_across_replicas;
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

// Collective, in this order: the network options (the bf16 check; --conv-algo auto: rank 0's
// probe), then rank 0's initial weights to every rank.
NetworkCache build_network_cache(const RunSetup& s, const dnnl::engine& eng, ParamArena& arena) {
  NetworkOptions options = choose_network_options(s.cfg, eng, s.pass, s.root, s.comm);
  share_initial_weights(arena, s.cfg, s.root, s.comm);
  return NetworkCache(find_model(s.cfg.model), eng, arena, std::move(options));
}

std::unique_ptr<SharedCounter> make_counter(const Config& cfg, MPI_Comm comm) {
  if (cfg.balance != Config::Balance::dynamic) return nullptr;
  try {
    return std::make_unique<SharedCounter>(comm);
  } catch (const Error& e) {
    throw Error(std::string("--balance dynamic: ") + e.what() + " (use --balance static)");
  }
}

// What a checkpoint of this run must share with the run that resumes it.
std::vector<std::pair<std::string, std::string>> checkpoint_identity(const RunSetup& s, const ModelState& model) {
  return resume_identity(s.cfg, s.world, model.reducer.hierarchical());
}

// Collective. Resuming: rank 0 reads and checks the checkpoint; weights, momentum and position go
// to all. Otherwise the run begins at the start.
CheckpointPosition resume(const RunSetup& s, ModelState& model) {
  CheckpointPosition pos;
  const Config& cfg = s.cfg;
  if (cfg.resume.empty()) return pos;
  ParamArena& arena = model.arena;
  if (s.root) pos = load_checkpoint(cfg.resume, arena, model.sgd.velocity(), checkpoint_identity(s, model));
  MPI_CHECK(MPI_Bcast(arena.params().data(), checked_mpi_count(arena.total_count()), MPI_FLOAT, 0, s.comm));
  MPI_CHECK(MPI_Bcast(model.sgd.velocity().data(), checked_mpi_count(arena.total_count()), MPI_FLOAT, 0, s.comm));
  long long p[3] = {pos.epoch, static_cast<long long>(pos.step), static_cast<long long>(pos.global_step)};
  MPI_CHECK(MPI_Bcast(p, 3, MPI_LONG_LONG, 0, s.comm));
  pos = {static_cast<int>(p[0]), static_cast<size_t>(p[1]), static_cast<size_t>(p[2])};
  // Every rank holds the same position now: a checkpoint past this run's end is refused together.
  if (pos.global_step > s.planned_steps)
    throw CollectiveError(cfg.resume + ": the checkpoint is at global step " + std::to_string(pos.global_step) +
                          ", past this run's end at step " + std::to_string(s.planned_steps) +
                          " (--epochs, --max-steps): nothing to train; give a later end");
  model.send_less.resume_state(cfg.resume, s.comm);  // PowerSGD's Q and each rank's error
  if (s.root) {
    spdlog::info("resuming {} at epoch {} step {} (global step {})", cfg.resume, pos.epoch + 1, pos.step,
                 pos.global_step);
    if (!cfg.init_weights.empty())
      spdlog::warn("--init-weights {} is not used: the run continues from the checkpoint's weights",
                   cfg.init_weights);
  }
  return pos;
}

// Every network is built now, not in the middle of the first epoch.
// With passes (--micro-batch): those of a full batch and of the epoch's last, partial one.
void build_every_network(const RunSetup& s, NetworkCache& nets) {
  nets.get(s.batch);
  for (const size_t b : {s.batch, s.cfg.drop_last ? size_t{0} : s.samples % s.batch}) {
    if (b == 0) continue;
    if (s.draws_chunks()) {  // --balance dynamic: the chunks of a step of all ranks' b images
      for (const size_t n : step_chunks(s, b * static_cast<size_t>(s.world))) nets.get(n);
      continue;
    }
    nets.get(std::min(s.pass, b));
    if (b % s.pass != 0) nets.get(b % s.pass);
  }
}

// Rank 0's start-up lines: the model and the ranks, the plan, sending less, the lr policy.
void log_start(const RunSetup& s, const ModelState& model) {
  const Config& cfg = s.cfg;
  const size_t batch = s.batch;
  const int world = s.world;
  spdlog::info("model: {}, {} parameters in {} tensors ({} gradient bytes), {} bucket(s); {} rank(s) x {} "
               "thread(s), per-rank batch {}{}, {} steps/epoch, allreduce {}, overlap {}, wire {}",
               cfg.model, model.arena.total_count(), model.arena.specs().size(),
               model.arena.total_count() * sizeof(float), model.reducer.buckets().size(), world, cfg.threads, batch,
               s.draws_chunks() ? " drawn by the ranks in chunks of " +
                                      std::to_string(step_chunks(s, batch * world).front()) + " down to " +
                                      std::to_string(kSmallestChunk) + " (--balance dynamic)"
               : s.pass < batch ? " in passes of " + std::to_string(s.pass)
                                : std::string(),
               s.steps_per_epoch, model.reducer.describe(), cfg.overlap ? "on" : "off", to_string(cfg.wire_dtype));
  log_plan(model.plan, model.reducer);
  const SendLess& send_less = model.send_less;
  if (send_less.on()) spdlog::info("sending less: {}", send_less.describe(model.arena.total_count()));
  if (send_less.forecast())
    spdlog::info("PowerSGD rank {} forecast: {}", cfg.compress_rank, send_less.forecast()->summary());
  if (send_less.compressing() && send_less.forecast() && !send_less.forecast()->pays())
    spdlog::warn("--compress powersgd is predicted to make the step slower on this link ({:.1f} ms of all-reduce "
                 "per step instead of {:.1f} ms); running it as asked",
                 send_less.forecast()->compressed * 1e3, send_less.forecast()->plain * 1e3);
  // The lr the run trains with, when it is not the --lr given.
  const LrSchedule& schedule = s.schedule;
  if (cfg.lr_scaling != LrScaling::none)
    spdlog::info("lr {} scaled {} x{:.4g} (global batch {} / {}) = {:.4g}", cfg.lr, to_string(cfg.lr_scaling),
                 schedule.scaled_lr() / cfg.lr, batch * static_cast<size_t>(world), kLrReferenceBatch,
                 schedule.scaled_lr());
  if (cfg.lr_schedule != LrScheduleKind::constant || cfg.warmup_epochs > 0 || cfg.augment != Augment::none ||
      cfg.weight_decay > 0 || cfg.nesterov)
    spdlog::info("policy: lr {:.4g}, schedule {}, warm-up {} epoch(s); weight decay {}, nesterov {}, augment {}",
                 schedule.scaled_lr(), to_string(cfg.lr_schedule), cfg.warmup_epochs, cfg.weight_decay,
                 cfg.nesterov ? "on" : "off", to_string(cfg.augment));
}

// The metrics file's run group: the options, the environment, the start, the convolutions' algorithms.
RunInfo describe_run(const RunSetup& s, const ModelState& model, const CheckpointPosition& start) {
  const Config& cfg = s.cfg;
  RunInfo info{config_items(cfg), cfg.meta, to_string(cfg.allreduce), to_string(cfg.wire_dtype),
               cfg.bucket_mb, cfg.overlap, cfg.eval, cfg.threads, cfg.epochs, cfg.max_steps, s.env,
               s.start_time, model.arena.total_count(), model.arena.total_count() * sizeof(float),
               model.reducer.buckets().size(), s.batch, s.steps_per_epoch};
  info.target_accuracy = cfg.target_accuracy;
  info.start_global_step = start.global_step;
  for (const auto& [layer, a] : model.nets.options().conv)  // what ran (--conv-algo auto decides at start-up)
    info.meta.emplace_back("conv_algo." + layer, std::string("forward ") + conv_algo_name(a.forward) +
                                                     ", backward-data " + conv_algo_name(a.backward_data) +
                                                     ", backward-weights " + conv_algo_name(a.backward_weights));
  return info;
}

}  // namespace

ModelState::ModelState(const RunSetup& s)
    : eng(dnnl::engine::kind::cpu, 0),
      stream(eng),
      nets(build_network_cache(s, eng, arena)),                                        // collective
      sgd(arena.total_count(), SgdOptions{s.cfg.lr, s.cfg.momentum, s.cfg.weight_decay, s.cfg.nesterov}),
      plan(plan_reduction(s.cfg, s.link_file, arena, nets.get(s.batch), stream, s.comm, s.root)),  // collective
      reducer(arena.grads(), plan.buckets, plan.strategies, s.cfg.overlap, s.comm, s.cfg.wire_dtype,
              s.cfg.ring_layout),
      send_less(s.cfg, arena, plan.strategies.front(), plan.link, s.link_file, s.comm),  // collective with --compress, --local-sgd
      counter(make_counter(s.cfg, s.comm)) {  // collective with --balance dynamic (a shared window)
  send_less.set_steps_per_epoch(s.steps_per_epoch);
}

StepScratch::StepScratch(const RunSetup& s, ModelState& model)
    : labels(s.batch),
      grad_accum(s.pass < s.batch || s.draws_chunks() ? model.arena.total_count() : 0),
      layer_forward(model.nets.get(s.batch).layers().size()),
      layer_backward(layer_forward.size()) {}

TrainingRun::TrainingRun(const Config& cfg, MPI_Comm comm)
    : setup(make_run_setup(cfg, comm, metrics)),  // collective: checks, environment, data
      model(setup),                               // collective: weights, network options, plan
      start(resume(setup, model)),                // collective when resuming
      // (PowerSGD and local SGD take the reducer's place, so there is nothing to try)
      overlap(setup.cfg.overlap && setup.world > 1, setup.cfg.overlap_trial && !model.send_less.on(),
              start.global_step),
      scratch(setup, model),
      trace(cfg.trace.empty() ? 0 : 100) {  // the first 100 steps
  build_every_network(setup, model.nets);
  if (setup.root) log_start(setup, model);
  if (metrics) {
    metrics->set_run_info(describe_run(setup, model, start));
    metrics->set_model(describe_model(model.arena, model.reducer, model.plan, model.nets.get(setup.batch)));
  }
  if (setup.root)
    checkpoints.writer = std::make_unique<CheckpointWriter>(setup.checkpoint_path, model.arena,
                                                            checkpoint_identity(setup, model),
                                                            model.plan.text(setup.world, cfg));
}

void TrainingRun::start_clock() {
  MPI_CHECK(MPI_Barrier(setup.comm));  // line the ranks' timelines up
  trace.set_origin(now_seconds());
  progress.t_run = now_seconds();
  checkpoints.last_time = progress.t_run;
}

void TrainingRun::write_metrics() {
  // The writer thread may be writing an older copy of the file.
  if (checkpoints.writer) checkpoints.writer->wait();
  try {
    metrics->write();
  } catch (const Error& e) {
    throw Error("cannot write metrics file " + metrics->path().string() + ": " + e.what());
  }
}

}  // namespace cifar
