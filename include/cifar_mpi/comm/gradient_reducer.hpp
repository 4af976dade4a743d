#pragma once
// Averages the gradient arena across the ranks of a communicator every step, bucket by bucket.
//
//   overlap off: after backward, the calling thread reduces every bucket in backward order.
//   overlap on:  the training thread itself starts each bucket's all-reduce as soon as backward
//                reports the bucket complete (on_grads_ready), and advances the started one with
//                poll() at every pause backward offers: after each layer, between a layer's
//                weight-gradient and data-gradient passes, and between the pieces of a long pass
//                (simple_cnn.hpp). finish_step() then waits for what is still in flight.
//
// Who advances a reduction: Open MPI (4.1, as Debian ships it) moves a message only inside MPI
// calls (a TCP socket is written, read and its rendezvous answered in opal_progress), so a
// reduction advances only while some thread of the rank is in MPI. A communication thread that
// waits inside MPI can be there only when it gets a core: with as many ranks as cores it took
// the core from backward, or waited for it (measured on 2 simulated hosts x 1 rank over 1 Gbit/s:
// T_comm 10 ms alone grew to 14-22 ms beside backward, T_comp by 5-25%, and with
// --mca mpi_yield_when_idle 1 the step got no shorter). So two callers that never wait inside MPI:
//   - the training thread, at every pause of backward (a few microseconds when there is nothing
//     to move);
//   - with set_background_poll, a thread that sleeps and, while reductions run beside backward,
//     wakes to make the same call (background_poller.hpp): the long primitives have no pause,
//     and each round of a reduction (the arrival check, MPI's rounds, TCP's window) needs the
//     receiving rank in MPI once. It costs backward a wake-up per call, not a core; a wake-up
//     costs more than the call, so it sleeps 500 us after a bucket starts or completes, twice as
//     long after each call that saw neither (up to 4 ms), and not at all while nothing is in
//     flight or ready (a bucket that arrives later arms it again).
// One mutex keeps them apart; neither ever blocks on the other (a caller that finds it taken
// leaves the work to the one inside).
// Every algorithm is advanced so, whatever the wire type: the ring and rhd step by step, MPI's as
// MPI_Iallreduce + MPI_Test, waited on with MPI_Wait after backward (with overlap off it is the
// blocking MPI_Allreduce). A bucket's end time is when a poll saw it complete: up to one pause
// of backward late while backward runs.
//
// The reducer only schedules buckets: which all-reduce runs is chosen once, at construction,
// from (strategy, wire type, layout) through the table of allreduce.hpp; each bucket may have its
// own strategy (--allreduce auto), and the reducer then holds one all-reduce per distinct one.
//
// With the ring or rhd and several ranks on each of several hosts, the all-reduce is hierarchical
// (hierarchical_allreduce.hpp, the ring or rhd across hosts) unless RingLayout::flat is asked for: each host link then carries
// 2(H-1)/H of the gradients instead of 2(N-1)/N (with a 16-bit wire type, 16-bit values on the
// links only).
//
// Averaging happens in exactly one place: each bucket is summed, then scaled by 1/N.
// With a 16-bit wire type (--wire-dtype, wire_format.hpp) a bucket travels as bf16/fp16 and is
// summed in float32 on arrival: by the ring itself, or by a user MPI_Op for mpi and naive.
#include <mpi.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "cifar_mpi/comm/allreduce.hpp"
#include "cifar_mpi/comm/allreduce_strategy.hpp"
#include "cifar_mpi/comm/background_poller.hpp"
#include "cifar_mpi/comm/bucket_plan.hpp"
#include "cifar_mpi/comm/stall_watch.hpp"
#include "cifar_mpi/comm/wire_dtype.hpp"

namespace cifar {

// set_background_poll's interval in cifar_mpi: the poller's first sleep after a bucket starts or
// completes; while one stays in flight the sleep doubles, up to kBackgroundPollLongest.
inline constexpr std::chrono::microseconds kBackgroundPollInterval{500};
inline constexpr std::chrono::microseconds kBackgroundPollLongest{4000};

struct BucketTiming {
  double start = 0, end = 0;  // now_seconds() around the bucket's reduction
};

struct StepCommStats {
  double first_start = 0;  // first reduction's start
  double last_end = 0;     // last reduction's end
  double wait = 0;         // time the main thread spent waiting for communication
  size_t calls = 0;        // collective calls (one per bucket)
  size_t bytes = 0;        // bytes reduced in the wire type (each rank's input size)
  int last_rank = -1;      // the rank that arrived last at the first reduction (StallWatch::arrive)
  double skew = 0;         // how long this rank waited for it, s
  double progress = 0;     // time the training thread spent in poll() during backward (overlap on)
  bool overlapped = false; // the reductions ran beside backward (overlap on, not held back, > 1 rank)
  double comm() const { return last_end > first_start ? last_end - first_start : 0; }
};

class GradientReducer {
 public:
  GradientReducer(std::span<float> grads, std::vector<Bucket> buckets, AllreduceStrategy strategy, bool overlap,
                  MPI_Comm comm, WireDtype wire = WireDtype::fp32, RingLayout layout = RingLayout::hosts,
                  int host_color = -1);  // host_color >= 0: tests draw hosts on one machine (HostLayout)
  // One strategy per bucket (bucket_strategies.size() == buckets.size(); none naive or auto).
  GradientReducer(std::span<float> grads, std::vector<Bucket> buckets,
                  std::vector<AllreduceStrategy> bucket_strategies, bool overlap, MPI_Comm comm,
                  WireDtype wire = WireDtype::fp32, RingLayout layout = RingLayout::hosts, int host_color = -1);
  ~GradientReducer();
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // From backward: the first `ready` floats of the arena are final. Overlap on: starts the
  // buckets they complete (one all-reduce in flight at a time, in bucket order) and polls;
  // otherwise only remembers.
  void on_grads_ready(size_t ready);
  // From backward, at every pause between oneDNN primitives (overlap on): advances the all-reduce
  // in flight, and once it completes starts the next complete bucket. A few microseconds when
  // there is nothing to move; nothing at all with overlap off.
  void poll();
  // Reduces what is left (overlap off: everything), waits for all buckets, and records the step.
  void finish_step();
  // Overlap on: whether the next steps' reductions run beside backward (the default), or wait
  // for finish_step, as without overlap. A held-back step measures the step without overlap in
  // the same run (metrics/overlap_figure.hpp); it gives the same bits (MPI's all-reduce in the
  // same polled form, waited on).
  void set_step_overlap(bool on) { step_overlap_ = on; }
  // Overlap on: also advance the reductions from a sleeping thread while they run beside backward
  // (see above): `interval` after a bucket starts or completes, then at doubling sleeps up to
  // kBackgroundPollLongest while it stays in flight, and not at all while nothing is in flight.
  // Needs MPI_THREAD_MULTIPLE. 0: the pauses alone.
  void set_background_poll(std::chrono::microseconds interval);

  // With a watch, every step's first reduction starts with its arrival check (who is late, and a
  // stall past --stall-timeout), and finish_step is a watched phase. Not owned; set before the
  // first step.
  void set_stall_watch(StallWatch* watch) { watch_ = watch; }

  const StepCommStats& last_step() const { return stats_; }
  const std::vector<Bucket>& buckets() const { return buckets_; }
  const std::vector<BucketTiming>& bucket_timings() const { return timings_; }
  // Some bucket's all-reduce is hierarchical (ring or rhd across hosts): more than one host, more
  // than one rank on each.
  bool hierarchical() const;
  // How the buckets are reduced, for the start-up line: e.g. "hierarchical ring (2 hosts x 2
  // ranks)", or per distinct all-reduce "ring for 1 bucket(s), rhd for 2 bucket(s)".
  std::string describe() const;
  // Bucket k's all-reduce: its table row's name ("ring", "hierarchical ring", ...).
  std::string bucket_algorithm(size_t k) const { return chosen_[bucket_algo_[k]].row->name; }

 private:
  void start_bucket(size_t k);
  void complete_bucket(size_t k);  // scale by 1/N, record its end
  void advance();                  // poll()'s work, untimed; the caller holds mutex_
  std::chrono::microseconds background_poll();  // the poller's call: returns its next sleep

  std::span<float> grads_;
  std::vector<Bucket> buckets_;
  bool overlap_;
  WireDtype wire_;
  int world_size_ = 1;
  std::vector<ChosenAllreduce> chosen_;  // one per distinct strategy, in order of first use
  std::vector<size_t> bucket_algo_;      // per bucket: its index into chosen_
  std::vector<float> scratch_;           // for the largest bucket, under any of them
  std::vector<BucketTiming> timings_;
  StepCommStats stats_;
  StallWatch* watch_ = nullptr;
  Arrival arrival_;  // this step's

  // This step, overlap on: buckets [0, ready_) are complete in backward, [0, started_) started,
  // [0, done_) reduced (started_ - done_ is 0 or 1); the arrival check posted or not.
  size_t ready_ = 0, started_ = 0, done_ = 0;
  bool arrival_posted_ = false;
  bool step_overlap_ = true;
  double progress_ = 0;  // seconds in poll() this step

  std::mutex mutex_;  // the training thread's polls against the background poller's
  std::chrono::microseconds poll_interval_{0}, poll_sleep_{0};  // the poller's first sleep, its current one
  std::unique_ptr<BackgroundPoller> poller_;
};

}  // namespace cifar
