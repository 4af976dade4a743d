#pragma once
// Stall detection (--stall-timeout S): a rank that stops arriving (SIGSTOP, a hung NFS read, a
// dead link that TCP has not yet noticed) would otherwise leave every other rank waiting inside
// a collective forever, with nothing in the log. Two mechanisms, one report:
//
//  * The arrival check, at each step's first gradient reduction (GradientReducer, before bucket
//    0, overlap on or off): every rank posts an MPI_Isend of its step number to every other
//    rank and an MPI_Irecv from each (on a duplicate of the communicator, so it cannot match an
//    all-reduce's messages), then polls MPI_Testsome with a short sleep. Whose message is still
//    missing after S seconds is known exactly: the waiting rank prints one line naming those
//    ranks, their hosts and the step, and exits kExitStalled. The same check records, for every
//    step, which rank arrived last (as this rank saw it) and how long this rank waited for it.
//    Cost: 2(N-1) messages of 8 bytes per rank per step, no allocation (buffers are made here).
//    For N in the thousands a tree (or a dissemination barrier built of Isend/Irecv) would cut
//    that to O(log N) per rank at the price of naming a subtree instead of a rank.
//  * A watchdog thread for the phases that block inside MPI and cannot poll (MPI_Allreduce of
//    the mpi strategy and of the per-step agreement, evaluation, barriers): the training thread
//    marks a phase's entry (name + time) and exit, and the watchdog reports a phase longer than
//    S in one line naming the phase, the step and the missing ranks; the process _exits
//    kExitStalled.
// "Longer than S" alone cannot tell a stopped rank from a slow phase (the test set's evaluation
// takes seconds), so S would have to exceed the slowest phase and every stall would cost that
// long. With MPI_THREAD_MULTIPLE the watchdogs ping each other instead: each answers pings every
// 100 ms whatever its rank is doing, and once its rank has waited S/4 (at the arrival check or
// in a phase) it pings every other rank every 250 ms. Past S, a wait ends the job only when
// some rank's watchdog has not answered for a second or two (the answer window: S/2 within
// [1, 2] s), i.e. its process is stopped, gone or cut off; while every rank answers, the ranks
// are slow but alive and the wait goes on, with one more warning, up to 10 S (at least 60 s),
// past which a phase that every rank answers through (a deadlock, a rank hung in a file system
// call) ends the job too. So S = 2-3 s is safe and a stopped rank is reported about S after
// the others began to wait for it. The arrival check still names the ranks whose messages are
// missing; a phase names the ranks that do not answer. A rank that ends its run normally says
// so to the others' watchdogs (it no longer answers, and is not waited for).
// Without MPI_THREAD_MULTIPLE there are no pings: S is a hard deadline for every wait, as it
// must then exceed the slowest phase (rank 0 warns at start-up); a phase names, with 2 ranks,
// the other one.
// A process that was itself suspended (its own clock jumped) restarts its waits instead of
// blaming the others. Both the check and the watchdog warn once, at S/4, that they are still
// waiting. mpirun then ends the other ranks (a SIGSTOPped one too: it sends SIGKILL). S = 0
// turns both off (the arrival check still records).
#include <mpi.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cifar {

// The exit status of a rank that reported a stall (distinct from 1 = error and 75 = checkpointed
// on a signal). sysexits' EX_PROTOCOL: "the remote system did something it should not".
inline constexpr int kExitStalled = 76;

struct Arrival {
  int last_rank = -1;  // the rank whose message came last (this rank if all were already there)
  double skew = 0;     // seconds this rank waited for it
};

class StallWatch {
 public:
  // Collective over comm (gathers the host names, duplicates the communicator). timeout_s <= 0:
  // no deadline, no watchdog thread.
  StallWatch(MPI_Comm comm, double timeout_s);
  ~StallWatch();
  StallWatch(const StallWatch&) = delete;
  StallWatch& operator=(const StallWatch&) = delete;

  // The global step (0-based) the training thread is on, for the messages.
  void set_step(size_t global_step) { step_.store(global_step, std::memory_order_relaxed); }

  // The arrival check (see above). Called by one thread at a time. Exits the process on a stall.
  // idle_core: nothing else of this rank needs its core meanwhile (the training thread itself
  // waits, or backward is over). Then, when this host has a core for each of its ranks, it polls
  // without pausing: the all-reduce that follows starts as soon as the last rank is there, on
  // both sides (2 ranks on 2 cores, time-to-accuracy recipe: 200 us polls, the last rank's wait
  // 1.7-1.9 ms a step; 20 us polls, 0.49-0.72 ms, of which ~0.2 ms between the last arrival and
  // the all-reduce's start (a sleep of 20 us lasts longer on a VM); no pause, 0.27-0.40 ms, the
  // all-reduce starting 15-20 us after the last arrival). Otherwise it polls every 200 us, leaving
  // the core to backward, or to the other ranks sharing it.
  Arrival arrive(bool idle_core);
  // The same check in three parts, for a caller that computes while the others arrive (the
  // gradient reducer with overlap tests it between backward's layers): post_arrival() sends and
  // posts the messages, test_arrival() is one non-blocking test (true once every message is
  // through; it too reports a stall past the deadline), finish_arrival() waits for the rest as
  // arrive() does and returns the result. The skew counts from post_arrival(), so with tests
  // between layers it is known to within a layer's time. One check at a time.
  void post_arrival();
  bool test_arrival();
  Arrival finish_arrival(bool idle_core);

  // Marks a blocking phase of the training thread (a string literal); leave() ends it.
  void enter(const char* phase);
  void leave();

  // RAII form of enter/leave.
  class Phase {
   public:
    Phase(StallWatch* w, const char* name) : w_(w) {
      if (w_) w_->enter(name);
    }
    ~Phase() {
      if (w_) w_->leave();
    }
    Phase(const Phase&) = delete;
    Phase& operator=(const Phase&) = delete;

   private:
    StallWatch* w_;
  };

  double timeout() const { return timeout_; }
  // "rank 1 (host-b)"
  std::string describe_rank(int r) const;

 private:
  // What the pings say about the wait in progress (see above).
  enum class Verdict { unknown, all_answer, silent };
  void watchdog_loop();
  [[noreturn]] void report_and_exit(const std::string& line);
  // Watchdog thread, with MPI_THREAD_MULTIPLE: answers other ranks' pings, takes in their
  // answers, sends a round of pings.
  void answer_pings();
  void take_pongs(double now);
  void send_pings();
  // Judges the wait that began at start, pinging since ping_since; publishes the verdict (and the
  // silent ranks' names) for the training thread's arrival check.
  Verdict judge(double start, double ping_since, double now);
  // The verdict on the wait that began at start (unknown if the watchdog has not judged it).
  Verdict verdict_for(double start) const;
  bool pinging() const { return ping_comm_ != MPI_COMM_NULL; }
  std::string silent_ranks() const;

  MPI_Comm comm_ = MPI_COMM_NULL;  // a duplicate, for the arrival messages only
  int rank_ = 0, world_ = 1;
  double timeout_ = 0;
  std::vector<std::string> hosts_;  // by rank
  // Arrival check buffers (no allocation per step).
  int64_t send_value_ = 0;
  std::vector<int64_t> recv_;          // by peer slot
  std::vector<MPI_Request> requests_;  // [0, N-1): receives, [N-1, 2N-2): sends
  std::vector<int> peers_, done_idx_;
  std::vector<char> arrived_;
  bool core_per_rank_ = false;  // this host has no more ranks than online cores
  struct ArrivalCheck {  // the check in progress (post_arrival .. test_arrival true)
    size_t step = 0;
    double t0 = 0, last_poll = 0, warn_at = 0, deadline = 0;
    int polls = 0, pending_recv = 0, pending = 0;
    bool warned = false, warned_alive = false, waiting = false, done = true;
    Arrival result;
  } check_;
  std::atomic<size_t> step_{0};
  std::atomic<int> last_late_{-1};  // the latest arrival of the last check (for the watchdog's line)

  // Watchdog state.
  std::atomic<const char*> phase_{nullptr};
  std::atomic<double> phase_start_{0};
  std::atomic<double> arrival_start_{0};  // t0 of the arrival check in progress
  std::atomic<bool> polling_{false};      // the arrival check runs (and keeps its own deadline)
  // Pings (with MPI_THREAD_MULTIPLE), all on the watchdog thread except the verdict.
  MPI_Comm ping_comm_ = MPI_COMM_NULL;
  MPI_Request ping_recv_ = MPI_REQUEST_NULL, pong_recv_ = MPI_REQUEST_NULL;
  std::vector<MPI_Request> ping_send_, pong_send_;  // by rank: at most one of each in flight
  int ping_in_ = 0, pong_in_ = 0, ping_out_ = 0, pong_out_ = 0, bye_out_ = -1;
  std::vector<double> last_pong_;  // by rank: when its watchdog last answered (+inf: it has left)
  double answer_window_ = 1.0;     // silent for this long: stopped, gone or cut off
  double alive_limit_ = 60.0;      // a wait that every rank answers through ends here
  mutable std::mutex silent_mutex_;  // guards the verdict, written by the watchdog, read by the check
  Verdict verdict_ = Verdict::unknown;
  double verdict_start_ = -1;  // the start of the wait it judges
  std::string silent_;         // the ranks that do not answer, for the line
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable cv_;
  std::thread thread_;
  std::mutex report_mutex_;
};

}  // namespace cifar
