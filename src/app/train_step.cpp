// One training step on this rank:
//   gather batch -> forward + backward (buckets reduced as they complete) -> wait -> SGD update
// It also finds the step's numerical faults, here where the rank is still known: this rank's
// gradients are scanned for NaN/Inf as backward hands them over (before a reduction mixes the
// ranks' values); the loss is checked, and the weights after the update (a reduced gradient or
// the update itself may overflow). What the ranks do about a fault is agree_on_step's.
#include <cmath>
#include <span>

#include "cifar_mpi/app/run_checks.hpp"
#include "cifar_mpi/util/clock.hpp"
#include "cifar_mpi/data/augment.hpp"
#include "training_run.hpp"

namespace cifar {

namespace {

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

// The gradients scanned so far this step, and the first non-finite one on this rank ("" if none).
struct GradientScan {
  const ParamArena& arena;
  std::string fault;
  size_t scanned = 0;

  void upto(size_t end) {
    const auto g = std::span<const float>(arena.grads()).subspan(scanned, end - scanned);
    const size_t i = find_non_finite(g);
    if (i < g.size() && fault.empty()) fault = non_finite_in(arena, arena.grads(), scanned + i, "gradient");
    scanned = end;
  }
};

// Records one step's timeline: data, forward, each layer's backward, each bucket's reduction
// (on the communication track), the wait and the update.
void trace_step(TraceRecorder& trace, const SimpleCnn& net, const GradientReducer& reducer, const double (&t)[5]) {
  trace.add("data", TraceRecorder::kMainThread, t[0], t[1]);
  trace.add("forward", TraceRecorder::kMainThread, net.forward_spans().front().begin, net.forward_spans().back().end);
  for (size_t i = 0; i < net.layers().size(); ++i)
    trace.add("backward " + net.layers()[i]->name(), TraceRecorder::kMainThread, net.backward_spans()[i].begin,
              net.backward_spans()[i].end);
  for (size_t k = 0; k < reducer.bucket_timings().size(); ++k)
    trace.add("allreduce bucket " + std::to_string(k), TraceRecorder::kCommThread, reducer.bucket_timings()[k].start,
              reducer.bucket_timings()[k].end);
  trace.add("wait", TraceRecorder::kMainThread, t[2], t[3]);
  trace.add("update", TraceRecorder::kMainThread, t[3], t[4]);
}

// The step's fault, the first of: this rank's loss, its gradients (kind 2), the weights after the
// update, the same on every rank (kind 1: the consequence of another rank's gradient, or of an
// overflow in the reduction or the update).
void find_fault(StepOutcome& out, const ParamArena& arena, float loss, const std::string& grad_fault) {
  if (!std::isfinite(loss))
    out.fault = "non-finite loss (" + show_value(loss) + ")", out.fault_kind = 2;
  else if (!grad_fault.empty())
    out.fault = grad_fault, out.fault_kind = 2;
  else if (const size_t i = find_non_finite(arena.params()); i < arena.total_count())
    out.fault = non_finite_in(arena, arena.params(), i, "weight") + " after the update", out.fault_kind = 1;
}

// Per-layer times of full batches, for the metrics file's model group (the cost model's input).
void record_layer_times(TrainingRun& run, const SimpleCnn& net) {
  for (size_t i = 0; i < run.layer_forward.size(); ++i) {
    run.layer_forward[i] = net.forward_spans()[i].end - net.forward_spans()[i].begin;
    run.layer_backward[i] = net.backward_spans()[i].end - net.backward_spans()[i].begin;
  }
  run.metrics->add_layer_times(run.layer_forward, run.layer_backward);
}

}  // namespace

StepOutcome train_step(TrainingRun& run, const std::vector<size_t>& order, const StepPosition& at) {
  StepOutcome out;
  const size_t first = at.step * run.batch, b = std::min(run.batch, run.samples - first);
  SimpleCnn& net = run.nets.get(b);
  double t[5];
  t[0] = now_seconds();
  gather_training_batch(run.data.train, std::span(order).subspan(first, b), run.cfg.augment, run.cfg.seed,
                        static_cast<uint64_t>(at.epoch), net.input(), run.labels.data());
  t[1] = now_seconds();
  GradientScan scan{run.arena, {}, 0};
  const LossResult r = net.forward_backward(run.stream, run.labels.data(), b, [&](size_t ready) {
    if (ready > scan.scanned) scan.upto(ready);
    run.reducer.on_grads_ready(ready);
  });
  if (scan.scanned < run.arena.total_count()) scan.upto(run.arena.total_count());  // not yet handed over
  t[2] = now_seconds();
  run.reducer.finish_step();
  t[3] = now_seconds();
  run.sgd.set_lr(static_cast<float>(run.schedule.lr_at(at.global_step)));
  run.sgd.step(run.arena.params(), run.arena.grads());
  t[4] = now_seconds();
  find_fault(out, run.arena, r.loss, scan.fault);

  const StepCommStats& c = run.reducer.last_step();
  StepRecord& rec = out.record;
  rec.t_data = t[1] - t[0];
  rec.t_comp = t[2] - t[1];
  rec.t_comm = c.comm();
  rec.t_wait = t[3] - t[2];
  rec.t_update = t[4] - t[3];
  rec.loss = r.loss;
  rec.comm_calls = static_cast<uint32_t>(c.calls);
  rec.comm_bytes = c.bytes;
  rec.last_rank = c.last_rank, rec.skew = c.skew;
  out.images = b;
  if (run.metrics && b == run.batch) record_layer_times(run, net);
  // A step that faults is never written out: the run ends before the trace is.
  if (run.trace.records(at.global_step - run.start.global_step)) trace_step(run.trace, net, run.reducer, t);
  return out;
}

}  // namespace cifar
