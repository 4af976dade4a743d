// The arrival check and the watchdog of --stall-timeout (see stall_watch.hpp).
#include "cifar_mpi/comm/stall_watch.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "cifar_mpi/util/clock.hpp"
#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

namespace {

constexpr int kArrivalTag = 1, kPingTag = 2, kPongTag = 3;
// A poll that comes this much later than asked means the process itself was suspended.
constexpr double kFrozenGap = 1.0;
// Between polls of the arrival messages: short against a step (>= 10 ms), long enough that a
// rank waiting for a slow one leaves its core to the others (or to its own backward). When the
// waiting rank has a core of its own that nothing else needs, it polls without pausing (see
// arrive()).
constexpr std::chrono::microseconds kArrivalPoll{200};
// A message that was waiting when this rank arrived still takes a few polls to show (Open MPI's
// MPI_Testsome reports what its progress completed on the next call): 5-20 us measured at 2 ranks
// on one host. Shorter waits count as no wait: this rank was the last to arrive.
constexpr double kArrivalLatency = 50e-6;
constexpr std::chrono::milliseconds kWatchdogPoll{100};
// Between two rounds of pings while this rank waits past S/4: a few rounds fit in the answer
// window, few enough that N ranks waiting on one cost little.
constexpr double kPingInterval = 0.25;
// A pong with this value: the sender's run has ended (its watchdog no longer answers).
constexpr int kBye = -1;

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, s < 1 ? "%.2g s" : "%.1f s", s);  // 0.05 s, 2.0 s, 300.0 s
  return buf;
}

}  // namespace

StallWatch::StallWatch(MPI_Comm comm, double timeout_s) : timeout_(timeout_s > 0 ? timeout_s : 0) {
  MPI_CHECK(MPI_Comm_rank(comm, &rank_));
  MPI_CHECK(MPI_Comm_size(comm, &world_));
  MPI_CHECK(MPI_Comm_dup(comm, &comm_));
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int len = 0;
  MPI_CHECK(MPI_Get_processor_name(name, &len));
  std::vector<char> all(static_cast<size_t>(world_) * MPI_MAX_PROCESSOR_NAME);
  MPI_CHECK(MPI_Allgather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, comm_));
  for (int r = 0; r < world_; ++r) {
    const char* p = all.data() + static_cast<size_t>(r) * MPI_MAX_PROCESSOR_NAME;
    hosts_.emplace_back(p, strnlen(p, MPI_MAX_PROCESSOR_NAME));
  }
  for (int r = 0; r < world_; ++r)
    if (r != rank_) peers_.push_back(r);
  const long local_ranks = std::count(hosts_.begin(), hosts_.end(), hosts_[static_cast<size_t>(rank_)]);
  core_per_rank_ = local_ranks <= sysconf(_SC_NPROCESSORS_ONLN);
  const size_t peers = peers_.size();
  recv_.assign(peers, 0);
  requests_.assign(2 * peers, MPI_REQUEST_NULL);
  done_idx_.assign(2 * peers, 0);
  arrived_.assign(peers, 0);
  int provided = MPI_THREAD_SINGLE;
  MPI_CHECK(MPI_Query_thread(&provided));
  if (timeout_ > 0 && world_ > 1 && provided == MPI_THREAD_MULTIPLE) {
    MPI_CHECK(MPI_Comm_dup(comm, &ping_comm_));
    ping_send_.assign(static_cast<size_t>(world_), MPI_REQUEST_NULL);
    pong_send_.assign(static_cast<size_t>(world_), MPI_REQUEST_NULL);
    last_pong_.assign(static_cast<size_t>(world_), -1e300);
    answer_window_ = std::clamp(timeout_ / 2, 1.0, 2.0);
    alive_limit_ = std::max(10 * timeout_, 60.0);
    pong_out_ = rank_;
    MPI_CHECK(MPI_Irecv(&ping_in_, 1, MPI_INT, MPI_ANY_SOURCE, kPingTag, ping_comm_, &ping_recv_));
    MPI_CHECK(MPI_Irecv(&pong_in_, 1, MPI_INT, MPI_ANY_SOURCE, kPongTag, ping_comm_, &pong_recv_));
  } else if (timeout_ > 0 && world_ > 1 && rank_ == 0) {
    std::fprintf(stderr,
                 "cifar_mpi: warning: the MPI library does not provide MPI_THREAD_MULTIPLE: --stall-timeout %s is a "
                 "hard deadline for every wait (it must exceed the slowest phase, e.g. an evaluation)\n",
                 seconds_text(timeout_).c_str());
  }
  if (timeout_ > 0) thread_ = std::thread([this] { watchdog_loop(); });
}

StallWatch::~StallWatch() {
  if (thread_.joinable()) {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  if (pinging()) {
    // The run ended here: the others' watchdogs stop waiting for this one's answers.
    std::vector<MPI_Request> bye(peers_.size(), MPI_REQUEST_NULL);
    for (size_t i = 0; i < peers_.size(); ++i)
      MPI_Isend(&bye_out_, 1, MPI_INT, peers_[i], kPongTag, ping_comm_, &bye[i]);
    for (MPI_Request* r : {&ping_recv_, &pong_recv_}) {
      MPI_Cancel(r);
      MPI_Wait(r, MPI_STATUS_IGNORE);
    }
    // 4-byte messages go out eagerly; one to a peer that is gone is left to MPI_Finalize.
    std::vector<MPI_Request> sends = bye;
    sends.insert(sends.end(), ping_send_.begin(), ping_send_.end());
    sends.insert(sends.end(), pong_send_.begin(), pong_send_.end());
    const double until = now_seconds() + 0.5;
    int all = 0;
    while (MPI_Testall(static_cast<int>(sends.size()), sends.data(), &all, MPI_STATUSES_IGNORE) == MPI_SUCCESS &&
           !all && now_seconds() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    for (MPI_Request& r : sends)
      if (r != MPI_REQUEST_NULL) MPI_Request_free(&r);
    MPI_Comm_free(&ping_comm_);
  }
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

void StallWatch::answer_pings() {
  for (;;) {
    int flag = 0;
    MPI_Status st;
    if (MPI_Test(&ping_recv_, &flag, &st) != MPI_SUCCESS || !flag) return;
    MPI_Request& pong = pong_send_[static_cast<size_t>(st.MPI_SOURCE)];
    int sent = 1;
    if (pong != MPI_REQUEST_NULL) MPI_Test(&pong, &sent, MPI_STATUS_IGNORE);
    // (an answer still in flight to that rank answers this ping too)
    if (sent) MPI_Isend(&pong_out_, 1, MPI_INT, st.MPI_SOURCE, kPongTag, ping_comm_, &pong);
    if (MPI_Irecv(&ping_in_, 1, MPI_INT, MPI_ANY_SOURCE, kPingTag, ping_comm_, &ping_recv_) != MPI_SUCCESS) return;
  }
}

void StallWatch::take_pongs(double now) {
  for (;;) {
    int flag = 0;
    MPI_Status st;
    if (MPI_Test(&pong_recv_, &flag, &st) != MPI_SUCCESS || !flag) return;
    double& last = last_pong_[static_cast<size_t>(st.MPI_SOURCE)];
    if (last < 1e300) last = pong_in_ == kBye ? 1e300 : now;
    if (MPI_Irecv(&pong_in_, 1, MPI_INT, MPI_ANY_SOURCE, kPongTag, ping_comm_, &pong_recv_) != MPI_SUCCESS) return;
  }
}

void StallWatch::send_pings() {
  for (const int r : peers_) {
    MPI_Request& ping = ping_send_[static_cast<size_t>(r)];
    int sent = 1;
    if (ping != MPI_REQUEST_NULL) MPI_Test(&ping, &sent, MPI_STATUS_IGNORE);
    if (sent) MPI_Isend(&ping_out_, 1, MPI_INT, r, kPingTag, ping_comm_, &ping);
  }
}

StallWatch::Verdict StallWatch::judge(double start, double ping_since, double now) {
  std::string silent;
  int n_silent = 0, n_pending = 0;
  for (const int r : peers_) {
    const double last = last_pong_[static_cast<size_t>(r)];
    if (last >= ping_since && now - last < answer_window_) continue;  // answers (or has left)
    if (now - std::max(last, ping_since) < answer_window_) {
      ++n_pending;  // asked, not yet long enough without an answer
      continue;
    }
    if (n_silent < 8) silent += std::string(n_silent ? ", " : "") + describe_rank(r);
    ++n_silent;
  }
  if (n_silent > 8) silent += " and " + std::to_string(n_silent - 8) + " more";
  const Verdict v = n_silent ? Verdict::silent : n_pending ? Verdict::unknown : Verdict::all_answer;
  std::lock_guard lock(silent_mutex_);
  if (v == Verdict::silent) silent_ = silent;
  verdict_ = v, verdict_start_ = start;
  return v;
}

StallWatch::Verdict StallWatch::verdict_for(double start) const {
  std::lock_guard lock(silent_mutex_);
  return verdict_start_ == start ? verdict_ : Verdict::unknown;
}

std::string StallWatch::silent_ranks() const {
  std::lock_guard lock(silent_mutex_);
  return silent_;
}

std::string StallWatch::describe_rank(int r) const {
  return "rank " + std::to_string(r) + " (" + hosts_[static_cast<size_t>(r)] + ")";
}

void StallWatch::report_and_exit(const std::string& line) {
  std::lock_guard lock(report_mutex_);  // one line per process, whoever sees the stall first
  std::fprintf(stderr, "cifar_mpi: error (rank %d): %s\n", rank_, line.c_str());
  std::fflush(nullptr);
  if (pinging()) {
    // This rank leaves: the others, which may still be judging the same stall until mpirun ends
    // them (a second or more), must not take its silence for the stall.
    std::vector<MPI_Request> bye(peers_.size(), MPI_REQUEST_NULL);
    for (size_t i = 0; i < peers_.size(); ++i)
      MPI_Isend(&bye_out_, 1, MPI_INT, peers_[i], kPongTag, ping_comm_, &bye[i]);
    const double until = now_seconds() + 0.05;
    int all = 0;
    while (MPI_Testall(static_cast<int>(bye.size()), bye.data(), &all, MPI_STATUSES_IGNORE) == MPI_SUCCESS && !all &&
           now_seconds() < until) {
    }
  }
  std::_Exit(kExitStalled);
}

Arrival StallWatch::arrive(bool idle_core) {
  post_arrival();
  return finish_arrival(idle_core);
}

void StallWatch::post_arrival() {
  check_ = ArrivalCheck{};
  const int peers = static_cast<int>(peers_.size());
  if (peers == 0) return;  // done: nobody to wait for
  check_.done = false;
  check_.step = step_.load(std::memory_order_relaxed);
  send_value_ = static_cast<int64_t>(check_.step);
  for (int i = 0; i < peers; ++i) {
    arrived_[static_cast<size_t>(i)] = 0;
    MPI_CHECK(MPI_Irecv(&recv_[static_cast<size_t>(i)], 1, MPI_INT64_T, peers_[static_cast<size_t>(i)], kArrivalTag,
                        comm_, &requests_[static_cast<size_t>(i)]));
  }
  for (int i = 0; i < peers; ++i)
    MPI_CHECK(MPI_Isend(&send_value_, 1, MPI_INT64_T, peers_[static_cast<size_t>(i)], kArrivalTag, comm_,
                        &requests_[static_cast<size_t>(peers + i)]));
  check_.t0 = check_.last_poll = now_seconds();
  arrival_start_.store(check_.t0, std::memory_order_relaxed);
  polling_.store(true, std::memory_order_release);
  check_.warn_at = check_.t0 + timeout_ / 4, check_.deadline = check_.t0 + timeout_;
  check_.pending_recv = peers, check_.pending = 2 * peers;
  // Messages already waiting show within a few tests (kArrivalLatency): look for them now, so a
  // caller that goes back to work and tests again later does not count that gap as a wait.
  while (!test_arrival() && now_seconds() - check_.t0 < kArrivalLatency) {
  }
}

bool StallWatch::test_arrival() {
  if (check_.done) return true;
  const int peers = static_cast<int>(peers_.size());
  int outcount = 0;
  MPI_CHECK(MPI_Testsome(2 * peers, requests_.data(), &outcount, done_idx_.data(), MPI_STATUSES_IGNORE));
  const double now = now_seconds();
  ++check_.polls;
  if (now - check_.last_poll > kFrozenGap && check_.waiting) {  // this process was suspended: its wait starts again
    const double gap = now - check_.last_poll;
    check_.warn_at += gap, check_.deadline += gap;
  }
  check_.last_poll = now;
  for (int j = 0; j < outcount && outcount != MPI_UNDEFINED; ++j) {
    --check_.pending;
    const int i = done_idx_[static_cast<size_t>(j)];
    if (i < peers) {
      --check_.pending_recv;
      arrived_[static_cast<size_t>(i)] = 1;
      if (check_.pending_recv == 0) {
        const bool already_there = now - check_.t0 < kArrivalLatency;
        check_.result.last_rank = already_there ? rank_ : peers_[static_cast<size_t>(i)];
        check_.result.skew = already_there ? 0 : now - check_.t0;
      }
    }
  }
  if (outcount == MPI_UNDEFINED) check_.pending = 0;
  if (check_.pending == 0) {
    check_.done = true;
    last_late_.store(check_.result.last_rank, std::memory_order_relaxed);
    // A phase that waited for the check starts its own wait now.
    phase_start_.store(now_seconds(), std::memory_order_relaxed);
    polling_.store(false, std::memory_order_release);
    return true;
  }
  if (timeout_ > 0 && now >= check_.warn_at) {
    // Past S the check waits on while every rank's watchdog answers (slow, not stopped), up to
    // alive_limit_; without pings, or once a rank is silent, it ends the job. A verdict that is
    // still unknown well past the window (the watchdog itself stuck) counts as silent.
    enum { wait_on, warn_alive, end_silent, end_alive } act = wait_on;
    if (now >= check_.deadline) {
      const Verdict v = pinging() ? verdict_for(check_.t0) : Verdict::silent;
      if (v == Verdict::silent || (v == Verdict::unknown && now >= check_.deadline + answer_window_ + 2.0))
        act = end_silent;
      else if (v == Verdict::all_answer)
        act = now >= check_.deadline - timeout_ + alive_limit_ ? end_alive : check_.warned_alive ? wait_on : warn_alive;
    }
    if (check_.warned && act == wait_on) return false;  // the common case while waiting: nothing to say
    std::string missing;
    int n_missing = 0;
    for (int i = 0; i < peers; ++i)
      if (!arrived_[static_cast<size_t>(i)]) {
        if (n_missing < 8) missing += std::string(n_missing ? ", " : "") + describe_rank(peers_[static_cast<size_t>(i)]);
        ++n_missing;
      }
    if (n_missing > 8) missing += " and " + std::to_string(n_missing - 8) + " more";
    if (n_missing == 0) missing = "none (the arrival messages to other ranks are not yet delivered)";
    const std::string where = " at global step " + std::to_string(check_.step + 1) + " (first gradient reduction)";
    const char* has = n_missing == 1 ? " has" : " have";
    if (act == end_silent)
      report_and_exit("stall: " + missing + has + " not arrived" + where + " within --stall-timeout " +
                      seconds_text(timeout_) + "; ending the job");
    if (act == end_alive)
      report_and_exit("stall: " + missing + has + " not arrived" + where + " within " + seconds_text(alive_limit_) +
                      ", though every rank answers pings (past --stall-timeout " + seconds_text(timeout_) +
                      "); ending the job");
    if (act == warn_alive) {
      std::fprintf(stderr,
                   "cifar_mpi: warning (rank %d): waiting %s for %s%s, past --stall-timeout %s, but every rank "
                   "answers: slow, not stopped; waiting up to %s\n",
                   rank_, seconds_text(now - check_.t0).c_str(), missing.c_str(), where.c_str(),
                   seconds_text(timeout_).c_str(), seconds_text(alive_limit_).c_str());
      std::fflush(stderr);
      check_.warned_alive = true;
    } else if (!check_.warned) {
      std::fprintf(stderr, "cifar_mpi: warning (rank %d): waiting %s for %s%s\n", rank_,
                   seconds_text(now - check_.t0).c_str(), missing.c_str(), where.c_str());
      std::fflush(stderr);
      check_.warned = true;
    }
  }
  return false;
}

Arrival StallWatch::finish_arrival(bool idle_core) {
  const bool spin = idle_core && core_per_rank_;
  // From here on this rank only waits: a gap between two tests longer than kFrozenGap can only be
  // a suspended process (while the caller computed between tests, gaps are its work).
  check_.waiting = true;
  check_.last_poll = now_seconds();
  while (!test_arrival()) {
    if (spin)
      std::this_thread::yield();  // runs at once on an idle core; lets anything else on it run first
    else if (check_.polls > 1)
      std::this_thread::sleep_for(kArrivalPoll);
  }
  return check_.result;
}

void StallWatch::enter(const char* phase) {
  phase_start_.store(now_seconds(), std::memory_order_relaxed);
  phase_.store(phase, std::memory_order_release);
}

void StallWatch::leave() { phase_.store(nullptr, std::memory_order_release); }

void StallWatch::watchdog_loop() {
  struct Wait {  // the wait of this rank the watchdog follows: the arrival check's or a phase's
    double start = -1, ping_since = -1, last_round = -1;
    const char* phase = nullptr;
    bool warned = false, warned_alive = false;
  } wait;
  std::unique_lock lock(mutex_);
  double last_wake = now_seconds();
  while (!stop_) {
    cv_.wait_for(lock, kWatchdogPoll, [&] { return stop_.load(); });
    if (stop_) return;
    const double woke = now_seconds();
    const bool frozen = woke - last_wake > kFrozenGap;  // this process was suspended
    last_wake = woke;
    // Answers whatever the training thread does: a rank busy in a long phase is alive.
    if (pinging()) answer_pings(), take_pongs(woke);
    if (frozen) {
      double start = phase_start_.load(std::memory_order_relaxed);
      phase_start_.compare_exchange_strong(start, woke);  // its wait starts again
      wait = Wait{};
      continue;
    }
    const bool arrival = polling_.load(std::memory_order_acquire);
    const char* phase = arrival ? nullptr : phase_.load(std::memory_order_acquire);
    if (!arrival && !phase) {
      wait = Wait{};
      continue;
    }
    const double start =
        arrival ? arrival_start_.load(std::memory_order_relaxed) : phase_start_.load(std::memory_order_relaxed);
    if (start != wait.start || phase != wait.phase) wait = Wait{start, -1, -1, phase};
    const double waited = woke - start;
    if (waited < timeout_ / 4) continue;  // the common case: nothing to say, nothing allocated
    Verdict verdict = Verdict::silent;  // without pings: past S is a stall
    if (pinging()) {
      if (wait.ping_since < 0) wait.ping_since = woke;
      if (woke - wait.last_round >= kPingInterval) send_pings(), wait.last_round = woke;
      verdict = judge(start, wait.ping_since, woke);
    }
    if (arrival) continue;  // the arrival check warns and ends the job itself, naming exactly
    const size_t step = step_.load(std::memory_order_relaxed);
    std::string who;
    if (verdict == Verdict::silent && pinging())
      who = silent_ranks();
    else if (world_ == 2)
      who = describe_rank(1 - rank_);
    else if (const int late = last_late_.load(std::memory_order_relaxed); late >= 0 && late != rank_)
      who = "an unknown rank (the last to arrive at this step's first reduction was " + describe_rank(late) + ")";
    else
      who = "an unknown rank";
    const std::string where = " in " + std::string(phase) + " at global step " + std::to_string(step + 1);
    if (waited >= timeout_) {
      if (verdict == Verdict::silent)
        report_and_exit("stall: " + who + " did not arrive" + where + " within --stall-timeout " +
                        seconds_text(timeout_) + "; ending the job");
      if (verdict == Verdict::all_answer && waited >= alive_limit_)
        report_and_exit("stall: every rank answers, but " + std::string(phase) + " did not complete at global step " +
                        std::to_string(step + 1) + " within " + seconds_text(alive_limit_) +
                        " (past --stall-timeout " + seconds_text(timeout_) + "); ending the job");
      if (verdict == Verdict::all_answer && !wait.warned_alive) {
        std::fprintf(stderr,
                     "cifar_mpi: warning (rank %d): %s at global step %zu has taken %s, past --stall-timeout %s, but "
                     "every rank answers: slow, not stopped; waiting up to %s\n",
                     rank_, phase, step + 1, seconds_text(waited).c_str(), seconds_text(timeout_).c_str(),
                     seconds_text(alive_limit_).c_str());
        std::fflush(stderr);
        wait.warned_alive = wait.warned = true;
      }
    }
    if (!wait.warned) {
      wait.warned = true;
      std::fprintf(stderr, "cifar_mpi: warning (rank %d): waiting %s for %s%s\n", rank_, seconds_text(waited).c_str(),
                   who.c_str(), where.c_str());
      std::fflush(stderr);
    }
  }
}

}  // namespace cifar
