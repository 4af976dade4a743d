#pragma once
// Averages the gradient arena across the ranks of a communicator every step, bucket by bucket.
//
//   overlap off: after backward, the calling thread reduces every bucket in backward order.
//   overlap on:  a communication thread reduces each bucket as soon as backward reports it
//                complete (on_grads_ready), while the main thread goes on with earlier layers;
//                finish_step() waits only for what is still in flight.
//
// Why a thread and not MPI_Iallreduce + MPI_Test between layers: Open MPI (4.1, as Debian ships
// it) makes progress on a non-blocking collective only inside MPI calls, so a reduction posted
// before conv2's backward would sit still for the whole of that layer. A thread blocked in the
// collective progresses it continuously; only that thread calls MPI during a step, so
// MPI_THREAD_SERIALIZED is all the MPI library must provide.
//
// A thread blocked in MPI spins, though: Open MPI polls its transports in a busy loop, and with
// as many ranks as cores that spinning takes the core backward needs (measured on 2 cores over a
// 1 Gbit/s link: overlap hid 84% of T_comm but stretched T_comp by 20%). So the communication
// thread starts each bucket's all-reduce and polls it (allreduce.hpp), sleeping kPollInterval
// between polls: the kernel moves the bytes meanwhile. Same bits as blocking (start + wait).
// Once backward is over (finish_step), the thread blocks in the started all-reduce instead: a
// polled MPI_Iallreduce only advances inside MPI_Test, so polling a bucket that nothing else
// competes with would stretch it (measured on 2 simulated hosts at 1 Gbit/s, one bucket of
// 1.26 MB: 15.6 ms polled against 9.9 ms blocking).
// Every algorithm polls so, whatever the wire type: the ring and rhd step by step, MPI's as
// MPI_Iallreduce + MPI_Test (with overlap off it is waited on: the blocking MPI_Allreduce).
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

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <string>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "cifar_mpi/comm/allreduce.hpp"
#include "cifar_mpi/comm/allreduce_strategy.hpp"
#include "cifar_mpi/comm/bucket_plan.hpp"
#include "cifar_mpi/comm/stall_watch.hpp"
#include "cifar_mpi/comm/wire_dtype.hpp"

namespace cifar {

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
  double comm() const { return last_end > first_start ? last_end - first_start : 0; }
};

class GradientReducer {
 public:
  // 100 us: a 1.26 MB all-reduce takes >= 1 ms on any link slower than ~10 Gbit/s, and socket
  // buffers hold far more than 100 us of data, so the link never idles for want of a poll.
  static constexpr std::chrono::microseconds kPollInterval{100};

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

  // From backward: the first `ready` floats of the arena are final. Starts the buckets they
  // complete (overlap on); otherwise only remembers.
  void on_grads_ready(size_t ready);
  // Reduces what is left (overlap off: everything), waits for all buckets, and records the step.
  void finish_step();

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
  void reduce_bucket(size_t k);  // sum over ranks, then scale by 1/N
  void comm_thread_loop();

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
  Arrival arrival_;  // this step's, from the thread that reduced bucket 0

  // Overlap state, guarded by mutex_: buckets [0, ready_) may be reduced; [0, done_) are.
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  size_t ready_ = 0, done_ = 0;
  bool stop_ = false;
  // Set by finish_step: backward is over, so the communication thread blocks in the all-reduce
  // instead of polling it (nothing else needs the core now; see reduce_bucket).
  std::atomic<bool> backward_done_{false};
};

}  // namespace cifar
