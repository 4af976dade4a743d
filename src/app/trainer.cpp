#include "cifar_mpi/app/trainer.hpp"

#include <omp.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <optional>

#include "cifar_mpi/app/checkpoint.hpp"
#include "cifar_mpi/app/run_checks.hpp"
#include "cifar_mpi/app/stop_signal.hpp"
#include "cifar_mpi/comm/gradient_reducer.hpp"
#include "cifar_mpi/data/cifar_dataset.hpp"
#include "cifar_mpi/data/distributed_sampler.hpp"
#include "cifar_mpi/metrics/metrics_file.hpp"
#include "cifar_mpi/metrics/trace_recorder.hpp"
#include "cifar_mpi/model/simple_cnn.hpp"
#include "cifar_mpi/model/weights_io.hpp"
#include "cifar_mpi/optim/sgd_momentum.hpp"
#include "cifar_mpi/util/clock.hpp"
#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

static_assert(SimpleCnn::kClasses == kNumClasses && SimpleCnn::kInputChannels == kImageChannels &&
                  SimpleCnn::kInputSide == kImageSide,
              "the network's input and output must match the data set");

namespace {

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

// "nan", "inf", "-inf" or the number.
std::string show_value(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return std::to_string(v);
}

// "non-finite <what> in <tensor> (element <i> is <value>)" for element `at` of `values` (arena layout).
std::string non_finite_in(const ParamArena& arena, std::span<const float> values, size_t at, const char* what) {
  const TensorSpec& t = tensor_at(arena, at);
  return std::string("non-finite ") + what + " in " + t.name + " (element " + std::to_string(at - t.offset) +
         " is " + show_value(values[at]) + ")";
}

// Records one step's timeline: data, forward, each layer's backward, each bucket's reduction
// (on the communication track), the wait and the update.
void trace_step(TraceRecorder& trace, const SimpleCnn& net, const GradientReducer& reducer, double t0, double t1,
                double t2, double t3, double t4) {
  trace.add("data", TraceRecorder::kMainThread, t0, t1);
  trace.add("forward", TraceRecorder::kMainThread, net.forward_spans().front().begin, net.forward_spans().back().end);
  for (size_t i = 0; i < net.layers().size(); ++i)
    trace.add("backward " + net.layers()[i]->name(), TraceRecorder::kMainThread, net.backward_spans()[i].begin,
              net.backward_spans()[i].end);
  for (size_t k = 0; k < reducer.bucket_timings().size(); ++k)
    trace.add("allreduce bucket " + std::to_string(k), TraceRecorder::kCommThread, reducer.bucket_timings()[k].start,
              reducer.bucket_timings()[k].end);
  trace.add("wait", TraceRecorder::kMainThread, t2, t3);
  trace.add("update", TraceRecorder::kMainThread, t3, t4);
}

// The metrics file's model group: tensors in arena (= backward) order, the buckets as reduced, the layers.
ModelInfo describe_model(const ParamArena& arena, const std::vector<Bucket>& buckets, const SimpleCnn& net) {
  ModelInfo m;
  std::vector<TensorSpec> specs = arena.specs();
  std::sort(specs.begin(), specs.end(), [](const auto& a, const auto& b) { return a.offset < b.offset; });
  for (const TensorSpec& t : specs)
    m.tensor_names.push_back(t.name), m.tensor_offsets.push_back(t.offset), m.tensor_floats.push_back(t.count);
  for (const Bucket& b : buckets) m.bucket_offsets.push_back(b.offset), m.bucket_floats.push_back(b.count);
  for (const auto& layer : net.layers()) m.layer_names.push_back(layer->name());
  return m;
}

std::string format_duration(double seconds) {
  const long s = std::lround(std::max(0.0, seconds));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  return buf;
}

// The per-rank batch: --batch-size, or --global-batch split evenly across the ranks.
size_t per_rank_batch(const Config& cfg, int world) {
  if (cfg.global_batch == 0) return cfg.batch_size;
  if (cfg.global_batch % static_cast<size_t>(world) != 0)
    throw Error("invalid configuration: --global-batch " + std::to_string(cfg.global_batch) +
                " does not divide evenly across " + std::to_string(world) + " ranks");
  return cfg.global_batch / static_cast<size_t>(world);
}

// Networks share the weights; one is built per batch size (full batches, the epoch's final
// partial batch, the test set's remainder).
class NetworkCache {
 public:
  NetworkCache(const dnnl::engine& eng, ParamArena& arena) : eng_(eng), arena_(arena) {}
  SimpleCnn& get(size_t batch) {
    auto& net = nets_[batch];
    if (!net) net = std::make_unique<SimpleCnn>(eng_, arena_, batch);
    return *net;
  }

 private:
  dnnl::engine eng_;
  ParamArena& arena_;
  std::map<size_t, std::unique_ptr<SimpleCnn>> nets_;
};

// Test loss and accuracy, each rank evaluating a contiguous slice of the test set.
std::pair<double, double> evaluate(const CifarSet& test, NetworkCache& nets, dnnl::stream& s, size_t batch,
                                   int rank, int world, MPI_Comm comm) {
  const size_t n = test.size(), begin = n * rank / world, end = n * (rank + 1) / world;
  std::vector<size_t> idx;
  std::vector<int32_t> labels(batch);
  double sums[2] = {0, 0};  // loss * count, correct
  for (size_t i = begin; i < end; i += batch) {
    const size_t b = std::min(batch, end - i);
    idx.resize(b);
    for (size_t k = 0; k < b; ++k) idx[k] = i + k;
    SimpleCnn& net = nets.get(b);
    gather_batch(test, idx, net.input(), labels.data());
    const LossResult r = net.forward(s, labels.data());
    sums[0] += static_cast<double>(r.loss) * static_cast<double>(b);
    sums[1] += static_cast<double>(r.correct);
  }
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, comm));
  return {sums[0] / static_cast<double>(n), sums[1] / static_cast<double>(n)};
}

}  // namespace

RunResult run_training(const Config& cfg, MPI_Comm comm) {
  int rank = 0, world = 1;
  MPI_CHECK(MPI_Comm_rank(comm, &rank));
  MPI_CHECK(MPI_Comm_size(comm, &world));
  const bool root = rank == 0;
  omp_set_num_threads(cfg.threads);
  const size_t batch = per_rank_batch(cfg, world);
  const std::string start_time = iso8601_now();
  check_output_directory("--save-weights", cfg.save_weights);
  check_output_directory("--checkpoint", cfg.checkpoint);
  check_output_directory("--trace", cfg.trace);
  install_stop_signal_handlers();

  // The metrics file's path is checked before anything slow, so a bad one fails at once.
  std::optional<MetricsFile> metrics;
  if (root && !cfg.metrics.empty()) metrics.emplace(cfg.metrics, cfg.force);
  int with_metrics = metrics ? 1 : 0;  // rank 0 decides; gathering is collective
  MPI_CHECK(MPI_Bcast(&with_metrics, 1, MPI_INT, 0, comm));
  const RunEnvironment env = with_metrics ? gather_run_environment(comm) : RunEnvironment{};

  const double t_load = now_seconds();
  const CifarSet train = load_cifar_train(cfg.data_dir);
  const CifarSet test = cfg.eval ? load_cifar_test(cfg.data_dir) : CifarSet{};
  {  // --data-dir may differ between ranks (node-local copies), the data set's size may not
    long long n[4] = {static_cast<long long>(train.size()), static_cast<long long>(test.size()),
                      -static_cast<long long>(train.size()), -static_cast<long long>(test.size())};
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, n, 4, MPI_LONG_LONG, MPI_MAX, comm));
    if (n[0] != -n[2] || n[1] != -n[3])
      throw CollectiveError("the ranks loaded data sets of different sizes (" + std::to_string(-n[2]) + " to " +
                            std::to_string(n[0]) + " training, " + std::to_string(-n[3]) + " to " +
                            std::to_string(n[1]) + " test images): check --data-dir on every node");
  }
  if (root)
    spdlog::info("data: {} training and {} test images from {} ({:.2f} s)", train.size(), test.size(),
                 cfg.data_dir, now_seconds() - t_load);

  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(eng);
  ParamArena arena;
  register_simple_cnn(arena);
  if (root) {
    if (cfg.init_weights.empty())
      init_pytorch_default(arena, cfg.seed);
    else
      load_weights(arena, cfg.init_weights);
  }
  // Rank 0's weights are everyone's: the replicas start identical and stay so.
  MPI_CHECK(MPI_Bcast(arena.params().data(), checked_mpi_count(arena.total_count()), MPI_FLOAT, 0, comm));

  NetworkCache nets(eng, arena);
  SgdMomentum sgd(arena.total_count(), cfg.lr, cfg.momentum);
  const bool per_tensor = cfg.allreduce == AllreduceStrategy::naive;
  GradientReducer reducer(arena.grads(),
                          plan_buckets(arena, static_cast<size_t>(cfg.bucket_mb * 1e6), per_tensor),
                          cfg.allreduce, cfg.overlap, comm, cfg.wire_dtype, cfg.ring_layout);
  // Resuming: rank 0 reads and checks the checkpoint; weights, momentum and position go to all.
  const auto identity = resume_identity(cfg, world, reducer.hierarchical());
  CheckpointPosition start;
  if (!cfg.resume.empty()) {
    if (root) start = load_checkpoint(cfg.resume, arena, sgd.velocity(), identity);
    MPI_CHECK(MPI_Bcast(arena.params().data(), checked_mpi_count(arena.total_count()), MPI_FLOAT, 0, comm));
    MPI_CHECK(MPI_Bcast(sgd.velocity().data(), checked_mpi_count(arena.total_count()), MPI_FLOAT, 0, comm));
    long long pos[3] = {start.epoch, static_cast<long long>(start.step), static_cast<long long>(start.global_step)};
    MPI_CHECK(MPI_Bcast(pos, 3, MPI_LONG_LONG, 0, comm));
    start = {static_cast<int>(pos[0]), static_cast<size_t>(pos[1]), static_cast<size_t>(pos[2])};
    if (root) spdlog::info("resuming {} at epoch {} step {} (global step {})", cfg.resume, start.epoch + 1, start.step,
                           start.global_step);
  }
  const std::string checkpoint_path = cfg.checkpoint.empty() ? "checkpoint.h5" : cfg.checkpoint;
  long long last_checkpoint_step = -1;  // global step of the last checkpoint this run wrote
  const auto write_checkpoint = [&](const CheckpointPosition& pos) {
    if (root) save_checkpoint(checkpoint_path, arena, sgd.velocity(), pos, identity);
    last_checkpoint_step = static_cast<long long>(pos.global_step);
  };
  const DistributedSampler sampler(train.size(), world, rank, !cfg.no_shuffle, cfg.seed, cfg.drop_last);
  const size_t samples = sampler.num_samples();
  const size_t steps_per_epoch = cfg.drop_last ? samples / batch : (samples + batch - 1) / batch;
  if (steps_per_epoch == 0)
    throw Error("invalid configuration: --batch-size " + std::to_string(batch) + " exceeds the " +
                std::to_string(samples) + " images of a rank's shard with --drop-last");
  const size_t planned_steps = cfg.max_steps > 0
                                   ? std::min(static_cast<size_t>(cfg.max_steps), steps_per_epoch * cfg.epochs)
                                   : steps_per_epoch * cfg.epochs;
  nets.get(batch);
  if (samples % batch != 0 && !cfg.drop_last) nets.get(samples % batch);
  if (root)
    spdlog::info("model: {} parameters ({} gradient bytes), {} bucket(s); {} rank(s) x {} thread(s), per-rank "
                 "batch {}, {} steps/epoch, allreduce {}, overlap {}, wire {}",
                 arena.total_count(), arena.total_count() * sizeof(float), reducer.buckets().size(), world,
                 cfg.threads, batch, steps_per_epoch, reducer.describe(), cfg.overlap ? "on" : "off",
                 to_string(cfg.wire_dtype));
  if (metrics)
    metrics->set_run_info({config_items(cfg), cfg.meta, to_string(cfg.allreduce), to_string(cfg.wire_dtype),
                           cfg.bucket_mb, cfg.overlap, cfg.eval, cfg.threads, cfg.epochs, cfg.max_steps, env,
                           start_time, arena.total_count(), arena.total_count() * sizeof(float),
                           reducer.buckets().size(), batch, steps_per_epoch});
  if (metrics) metrics->set_model(describe_model(arena, reducer.buckets(), nets.get(batch)));
  std::vector<double> layer_fwd(nets.get(batch).layers().size()), layer_bwd(layer_fwd.size());

  // A failed write names the file (the HDF5 layer names the dataset and the system's reason).
  const auto write_metrics = [&metrics] {
    try {
      metrics->write();
    } catch (const Error& e) {
      throw Error("cannot write metrics file " + metrics->path().string() + ": " + e.what());
    }
  };

  RunResult result;
  result.steps.reserve(planned_steps);
  TraceRecorder trace(cfg.trace.empty() ? 0 : 100);  // the first 100 steps
  MPI_CHECK(MPI_Barrier(comm));  // line the ranks' timelines up
  trace.set_origin(now_seconds());
  std::vector<int32_t> labels(batch);
  // Numerical faults. This rank's gradients are scanned for NaN/Inf as backward hands them over
  // (before a reduction mixes the ranks' values, so the rank is known); the loss is checked, and
  // the weights after the update (a reduced gradient or the update itself may overflow).
  std::string grad_fault;  // this step's first non-finite gradient on this rank ("" if none)
  size_t grads_scanned = 0;
  const auto scan_grads = [&](size_t upto) {
    const auto g = std::span<const float>(arena.grads()).subspan(grads_scanned, upto - grads_scanned);
    const size_t i = find_non_finite(g);
    if (i < g.size() && grad_fault.empty())
      grad_fault = non_finite_in(arena, arena.grads(), grads_scanned + i, "gradient");
    grads_scanned = upto;
  };
  const auto on_grads_ready = [&](size_t ready) {
    if (ready > grads_scanned) scan_grads(ready);
    reducer.on_grads_ready(ready);
  };
  const double t_run = now_seconds();
  size_t global_step = start.global_step;
  bool stopped = false;
  for (int epoch = start.epoch; epoch < cfg.epochs && global_step < planned_steps && !stopped; ++epoch) {
    const double t_epoch = now_seconds();
    const std::vector<size_t> order = sampler.indices(static_cast<uint64_t>(epoch));
    double loss_sum = 0;
    size_t epoch_steps = 0, epoch_images = 0;
    const size_t first_step = epoch == start.epoch ? start.step : 0;
    for (size_t step = first_step; step < steps_per_epoch && global_step < planned_steps; ++step, ++global_step) {
      StepRecord rec;
      const size_t first = step * batch, b = std::min(batch, samples - first);
      SimpleCnn& net = nets.get(b);
      const double t0 = now_seconds();
      gather_batch(train, std::span(order).subspan(first, b), net.input(), labels.data());
      const double t1 = now_seconds();
      grad_fault.clear();
      grads_scanned = 0;
      const LossResult r = net.forward_backward(stream, labels.data(), b, on_grads_ready);
      if (grads_scanned < arena.total_count()) scan_grads(arena.total_count());  // not yet handed over
      const double t2 = now_seconds();
      reducer.finish_step();
      const double t3 = now_seconds();
      sgd.step(arena.params(), arena.grads());
      const double t4 = now_seconds();
      // kind 2: this rank's own loss or gradients; kind 1: the weights after the update, the same
      // on every rank (the consequence of another rank's gradient, or of an overflow in the
      // reduction or the update).
      std::string fault;
      int kind = 0;
      if (!std::isfinite(r.loss))
        fault = "non-finite loss (" + show_value(r.loss) + ")", kind = 2;
      else if (!grad_fault.empty())
        fault = grad_fault, kind = 2;
      else if (const size_t i = find_non_finite(arena.params()); i < arena.total_count())
        fault = non_finite_in(arena, arena.params(), i, "weight") + " after the update", kind = 1;
      // One collective per step decides for every rank alike: a numerical fault on any rank ends
      // the run here, before this step's checkpoint, metrics or weights are written; otherwise a
      // stop signal on any rank makes every rank checkpoint after this same step.
      int flags[2] = {stop_signal_received() ? 1 : 0, kind ? kind * world + (world - 1 - rank) : 0};
      MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, flags, 2, MPI_INT, MPI_MAX, comm));
      if (flags[1]) {  // the lowest rank with the first kind of fault words the message; all throw it
        const int culprit = world - 1 - flags[1] % world;
        std::string msg;
        if (rank == culprit) {
          msg = fault + " at epoch " + std::to_string(epoch + 1) + " step " + std::to_string(step + 1) +
                " (global step " + std::to_string(global_step + 1) + ") on rank " + std::to_string(rank) +
                " (learning rate too high?)";
          if (last_checkpoint_step >= 0)
            msg += "; " + checkpoint_path + " keeps the checkpoint of global step " +
                   std::to_string(last_checkpoint_step);
        }
        int len = checked_mpi_count(msg.size());
        MPI_CHECK(MPI_Bcast(&len, 1, MPI_INT, culprit, comm));
        msg.resize(static_cast<size_t>(len));
        MPI_CHECK(MPI_Bcast(msg.data(), len, MPI_CHAR, culprit, comm));
        throw CollectiveError(msg);
      }
      const StepCommStats& c = reducer.last_step();
      rec.t_data = t1 - t0;
      rec.t_comp = t2 - t1;
      rec.t_comm = c.comm();
      rec.t_wait = t3 - t2;
      rec.t_update = t4 - t3;
      rec.loss = r.loss;
      rec.comm_calls = static_cast<uint32_t>(c.calls);
      rec.comm_bytes = c.bytes;
      result.steps.push_back(rec);
      if (metrics && b == batch) {  // per-layer times of full batches (the cost model's model/ group)
        for (size_t i = 0; i < layer_fwd.size(); ++i) {
          layer_fwd[i] = net.forward_spans()[i].end - net.forward_spans()[i].begin;
          layer_bwd[i] = net.backward_spans()[i].end - net.backward_spans()[i].begin;
        }
        metrics->add_layer_times(layer_fwd, layer_bwd);
      }
      if (trace.records(global_step - start.global_step)) trace_step(trace, net, reducer, t0, t1, t2, t3, t4);
      // Position after this step, as a resumed run must see it.
      const CheckpointPosition next = step + 1 == steps_per_epoch ? CheckpointPosition{epoch + 1, 0, global_step + 1}
                                                                  : CheckpointPosition{epoch, step + 1, global_step + 1};
      if (flags[0]) {  // every rank stops after the same step
        write_checkpoint(next);
        if (root) spdlog::warn("stop signal: stopped after step {} (global step {}), checkpoint written to {}", step + 1,
                               global_step + 1, checkpoint_path);
        stopped = true;
      } else if (cfg.checkpoint_every > 0 && (global_step + 1) % static_cast<size_t>(cfg.checkpoint_every) == 0) {
        write_checkpoint(next);
      }
      result.images_per_rank += b;
      epoch_images += b;
      loss_sum += r.loss;
      ++epoch_steps;
      if (root && ((step + 1) % static_cast<size_t>(cfg.log_every) == 0 || step + 1 == steps_per_epoch)) {
        const double elapsed = now_seconds() - t_run;
        const double ips = static_cast<double>(result.images_per_rank) * world / elapsed;
        const double eta = elapsed / static_cast<double>(global_step + 1) *
                           static_cast<double>(planned_steps - global_step - 1);
        spdlog::info("epoch {} step {:>4}/{} | loss {:.4f} | {:>7.0f} img/s | ETA {}", epoch + 1, step + 1,
                     steps_per_epoch, r.loss, ips, format_duration(eta));
      }
      if (stopped) break;
    }
    EpochRecord er;
    er.epoch = epoch + 1;
    er.steps = epoch_steps;
    er.wall = now_seconds() - t_epoch;
    er.images = epoch_images * static_cast<size_t>(world);  // the sampler pads: every rank takes b
    double loss_mean = loss_sum / static_cast<double>(std::max<size_t>(1, epoch_steps));
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &loss_mean, 1, MPI_DOUBLE, MPI_SUM, comm));
    er.train_loss = loss_mean / world;
    if (cfg.eval && !stopped)
      std::tie(er.test_loss, er.test_accuracy) = evaluate(test, nets, stream, batch, rank, world, comm);
    else  // not evaluated: --eval false, or the partial epoch of a run stopped by a signal
      er.test_loss = er.test_accuracy = std::numeric_limits<double>::quiet_NaN();
    if (root && cfg.eval && !stopped)
      spdlog::info("epoch {} done: train loss {:.4f}, test loss {:.4f}, test accuracy {:.2f}%, {:.2f} s", er.epoch,
                   er.train_loss, er.test_loss, 100 * er.test_accuracy, er.wall);
    else if (root)
      spdlog::info("epoch {} done: train loss {:.4f}, {:.2f} s", er.epoch, er.train_loss, er.wall);
    result.epochs.push_back(er);
    if (with_metrics) {  // outside the epoch's wall time; rank 0 rewrites the whole file
      auto all = gather_step_records(std::span(result.steps).last(epoch_steps), comm);
      if (metrics) {
        metrics->add_epoch(er, std::move(all));
        write_metrics();
      }
    }
  }
  result.total_wall = now_seconds() - t_run;
  result.stopped = stopped;
  if (!stopped && !cfg.checkpoint.empty()) {  // the end of a --max-steps chunk is resumable too
    const size_t in_epoch = global_step % steps_per_epoch;
    write_checkpoint({static_cast<int>(global_step / steps_per_epoch), in_epoch, global_step});
  }
  if (trace.enabled()) {
    trace.write(cfg.trace, comm);
    if (root) spdlog::info("trace written to {} (open in https://ui.perfetto.dev or chrome://tracing)", cfg.trace);
  }
  if (metrics) {
    metrics->set_complete(result.total_wall);
    write_metrics();
    result.metrics_path = metrics->path().string();
    spdlog::info("metrics written to {}", result.metrics_path);
  }
  if (root && !cfg.save_weights.empty()) {
    save_weights(arena, cfg.save_weights);
    spdlog::info("weights saved to {}", cfg.save_weights);
  }
  return result;
}

}  // namespace cifar
