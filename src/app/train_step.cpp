// One training step on this rank:
//   gather batch -> forward + backward (buckets reduced as they complete) -> wait -> SGD update
// It also finds the step's numerical faults, here where the rank is still known: this rank's
// gradients are scanned for NaN/Inf as backward hands them over (before a reduction mixes the
// ranks' values); the loss is checked, and the weights after the update (a reduced gradient or
// the update itself may overflow). What the ranks do about a fault is agree_on_step's.
#include <cmath>
#include <span>

#include "cifar_mpi/app/run_checks.hpp"
#include "cifar_mpi/comm/buffer_broadcast.hpp"
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
void trace_step(TraceRecorder& trace, const Network& net, const GradientReducer& reducer, const double (&t)[5]) {
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

// Per-layer times of a step, summed over its passes, for the metrics file's model group (the
// cost model's input).
void add_layer_times(StepScratch& scratch, const Network& net, bool first_pass) {
  for (size_t i = 0; i < scratch.layer_forward.size(); ++i) {
    const double f = net.forward_spans()[i].end - net.forward_spans()[i].begin;
    const double b = net.backward_spans()[i].end - net.backward_spans()[i].begin;
    scratch.layer_forward[i] = first_pass ? f : scratch.layer_forward[i] + f;
    scratch.layer_backward[i] = first_pass ? b : scratch.layer_backward[i] + b;
  }
}

// Backward hands gradients [0, ready) over: to the reducer, unless --compress / --local-sgd
// take this step (send_less.hpp).
void hand_over(ModelState& model, size_t ready) {
  if (!model.send_less.active()) model.reducer.on_grads_ready(ready);
}

struct Passes {
  double loss = 0;          // the batch mean
  double t_data = 0;        // seconds gathering images
  double first_gathered = 0;  // when the first pass's images were in
  const Network* last = nullptr;  // the network of the last pass (its spans are the trace's)
  size_t images = 0;          // this rank trained (--balance dynamic: what it drew)
  size_t passes = 0;
};

// Forward and backward over the rank's batch `indices`, in passes of setup.pass images
// (--micro-batch; one pass by default). Each pass's loss gradient is scaled by the whole batch,
// so the passes' weight gradients add up to the batch's: the earlier passes' sum waits in
// scratch.grad_accum, and the last pass adds it into the arena as backward hands each layer over,
// so that the scan and the reducer (buckets, overlap) see the batch's gradients as before.
Passes forward_backward_in_passes(TrainingRun& run, std::span<const size_t> indices, uint64_t epoch,
                                  GradientScan& scan) {
  const RunSetup& setup = run.setup;
  ModelState& model = run.model;
  StepScratch& scratch = run.scratch;
  Passes out;
  const size_t b = indices.size();
  const std::span<float> grads(model.arena.grads());
  size_t added = 0;  // grads[0, added) hold the batch's sum
  // What the last pass's hooks work on, reached through one pointer: a std::function keeps a
  // lambda of one pointer in place, while one of several references would be allocated each step.
  struct LastPass {
    TrainingRun& run;
    GradientScan& scan;
    std::span<float> grads;
    size_t& added;
    bool alone;
  };
  for (size_t first = 0; first < b; first += setup.pass) {
    const size_t n = std::min(setup.pass, b - first);
    const bool last = first + n == b, alone = first == 0 && last;
    Network& net = model.nets.get(n);
    const double t0 = now_seconds();
    gather_training_batch(setup.data.train, indices.subspan(first, n), setup.cfg.augment, setup.cfg.seed, epoch,
                          net.input(), scratch.labels.data() + first);
    out.t_data += now_seconds() - t0;
    if (first == 0) out.first_gathered = now_seconds();
    LastPass ctx{run, scan, grads, added, alone};
    GradsReadyHook hook;
    BackwardPollHook poll;
    if (last) poll = [r = &run] { r->model.reducer.poll(); };
    if (last)
      hook = [c = &ctx](size_t ready) {
        if (!c->alone)
          for (; c->added < ready; ++c->added) c->grads[c->added] += c->run.scratch.grad_accum[c->added];
        if (ready > c->scan.scanned) c->scan.upto(ready);
        hand_over(c->run.model, ready);
      };
    const LossResult r = net.forward_backward(model.stream, scratch.labels.data() + first, b, hook, poll);
    out.loss += alone ? r.loss : r.loss * static_cast<double>(n) / static_cast<double>(b);
    if (!last && first == 0)
      std::copy(grads.begin(), grads.end(), scratch.grad_accum.begin());
    else if (!last)
      for (size_t i = 0; i < grads.size(); ++i) scratch.grad_accum[i] += grads[i];
    else if (!alone)
      for (; added < grads.size(); ++added) grads[added] += scratch.grad_accum[added];
    if (run.metrics) add_layer_times(scratch, net, first == 0);
    out.last = &net;
    out.images += n;
    ++out.passes;
  }
  return out;
}

// --balance dynamic: forward and backward over the chunks of the step's images (all ranks'
// together, `images`) that this rank draws from the host's counter, until none are left. Ticket t
// of this step is chunk t - model.ticket_base of batch_chunks(); every rank draws exactly one
// ticket past the last chunk before it reaches the all-reduce, so the next step's tickets start
// chunks + N later on every rank. Each chunk's loss gradient is scaled by the rank's share of the
// step (`share` = images / N), so the ranks' sums, averaged by the reduction, are the step's mean
// gradient whoever drew what. As with passes, the earlier chunks' sum waits in scratch.grad_accum
// and is added into the arena after the last one (known once the next draw comes back empty); the
// gradients are handed to the reducer once, complete.
Passes forward_backward_drawn(TrainingRun& run, std::span<const size_t> images, size_t share, uint64_t epoch,
                              GradientScan& scan) {
  const RunSetup& setup = run.setup;
  ModelState& model = run.model;
  StepScratch& scratch = run.scratch;
  Passes out;
  const std::vector<size_t> chunks = step_chunks(setup, images.size());
  std::vector<size_t> offsets(chunks.size());  // where each chunk starts in `images`
  for (size_t k = 1; k < chunks.size(); ++k) offsets[k] = offsets[k - 1] + chunks[k - 1];
  const std::span<float> grads(model.arena.grads());
  const auto draw = [&] { return model.counter->draw() - model.ticket_base; };
  for (uint64_t ticket = draw(); ticket < chunks.size();) {
    const size_t n = chunks[ticket];
    Network& net = model.nets.get(n);
    const double t0 = now_seconds();
    gather_training_batch(setup.data.train, images.subspan(offsets[ticket], n), setup.cfg.augment, setup.cfg.seed,
                          epoch, net.input(), scratch.labels.data());
    out.t_data += now_seconds() - t0;
    if (out.passes == 0) out.first_gathered = now_seconds();
    const LossResult r = net.forward_backward(model.stream, scratch.labels.data(), share);
    out.loss += r.loss * static_cast<double>(n) / static_cast<double>(share);
    ticket = draw();
    const bool last = ticket >= chunks.size();
    if (!last && out.passes == 0)
      std::copy(grads.begin(), grads.end(), scratch.grad_accum.begin());
    else if (!last)
      for (size_t i = 0; i < grads.size(); ++i) scratch.grad_accum[i] += grads[i];
    else if (out.passes > 0)
      for (size_t i = 0; i < grads.size(); ++i) grads[i] += scratch.grad_accum[i];
    if (run.metrics) add_layer_times(scratch, net, out.passes == 0);
    out.last = &net;
    out.images += n;
    ++out.passes;
  }
  model.ticket_base += chunks.size() + static_cast<size_t>(setup.world);
  if (out.passes == 0)
    std::fill(grads.begin(), grads.end(), 0.0f);  // the others drew every chunk: this rank adds nothing
  scan.upto(grads.size());
  hand_over(model, grads.size());
  return out;
}

}  // namespace

StepOutcome train_step(TrainingRun& run, const std::vector<size_t>& order, const StepPosition& at) {
  const RunSetup& setup = run.setup;
  ModelState& model = run.model;
  StepScratch& scratch = run.scratch;
  StepOutcome out;
  model.reducer.set_step_overlap(run.overlap.overlapped(at.global_step));
  const size_t first = at.step * setup.batch, b = std::min(setup.batch, setup.samples - first);
  double t[5];
  t[0] = now_seconds();
  GradientScan scan{model.arena, {}, 0};
  const bool sending_less = model.send_less.begin_step(at.global_step);
  StepCommStats less;  // its communication, when it takes the step
  const auto world = static_cast<size_t>(setup.world);
  const Passes p = model.counter ? forward_backward_drawn(run, std::span(order).subspan(first * world, b * world), b,
                                                          static_cast<uint64_t>(at.epoch), scan)
                                 : forward_backward_in_passes(run, std::span(order).subspan(first, b),
                                                              static_cast<uint64_t>(at.epoch), scan);
  if (scan.scanned < model.arena.total_count()) scan.upto(model.arena.total_count());  // not yet handed over
  t[1] = p.last ? p.first_gathered : t[0];  // (a rank that drew no chunk gathered nothing)
  t[2] = now_seconds();
  if (!sending_less)
    model.reducer.finish_step();
  else if (model.send_less.compressing())
    model.send_less.reduce_gradients(model.arena.grads(), less);
  t[3] = now_seconds();
  model.sgd.set_lr(static_cast<float>(setup.schedule.lr_at(at.global_step)));
  model.sgd.step(model.arena.params(), model.arena.grads());
  if (sending_less && !model.send_less.compressing())
    model.send_less.after_update(model.arena.params(), at.global_step, less);
  broadcast_buffers(model.arena, setup.comm);
  t[4] = now_seconds();
  find_fault(out, model.arena, p.loss, scan.fault);

  const StepCommStats& c = sending_less ? less : model.reducer.last_step();
  StepRecord& rec = out.record;
  rec.t_data = p.t_data;
  rec.t_comp = t[2] - t[0] - p.t_data;
  rec.t_comm = c.comm();
  rec.t_wait = t[3] - t[2];
  rec.t_update = t[4] - t[3];
  rec.loss = p.loss;
  rec.comm_calls = static_cast<uint32_t>(c.calls);
  rec.comm_bytes = c.bytes;
  rec.last_rank = c.last_rank, rec.skew = c.skew;
  rec.t_progress = c.progress;
  rec.overlapped = c.overlapped ? 1 : 0;
  out.images = b;
  out.trained = p.images;
  // (the cost model's input: a full batch's layers, so not a step where this rank drew more or less)
  if (run.metrics && b == setup.batch && (!model.counter || p.images == b))
    run.metrics->add_layer_times(scratch.layer_forward, scratch.layer_backward);
  // A step that faults is never written out: the run ends before the trace is.
  if (p.last && !sending_less && run.trace.records(at.global_step - run.start.global_step)) {
    trace_step(run.trace, *p.last, model.reducer, t);
    if (p.passes > 1)  // the last pass's layers are drawn; the passes before it as one span
      run.trace.add("passes before the last", TraceRecorder::kMainThread, t[1], p.last->forward_spans().front().begin);
  }
  return out;
}

}  // namespace cifar
