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

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", s);
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
    MPI_CHECK(MPI_Irecv(&ping_in_, 1, MPI_INT, MPI_ANY_SOURCE, kPingTag, ping_comm_, &ping_recv_));
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
  if (ping_recv_ != MPI_REQUEST_NULL) {
    MPI_Cancel(&ping_recv_);
    MPI_Wait(&ping_recv_, MPI_STATUS_IGNORE);
  }
  if (pong_send_ != MPI_REQUEST_NULL) MPI_Wait(&pong_send_, MPI_STATUS_IGNORE);
  if (ping_comm_ != MPI_COMM_NULL) MPI_Comm_free(&ping_comm_);
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

void StallWatch::answer_pings() {
  if (ping_comm_ == MPI_COMM_NULL) return;
  for (;;) {
    int flag = 0;
    MPI_Status st;
    if (MPI_Test(&ping_recv_, &flag, &st) != MPI_SUCCESS || !flag) return;
    if (pong_send_ != MPI_REQUEST_NULL) MPI_Wait(&pong_send_, MPI_STATUS_IGNORE);  // 4 bytes: eager
    pong_out_ = rank_;
    MPI_Isend(&pong_out_, 1, MPI_INT, st.MPI_SOURCE, kPongTag, ping_comm_, &pong_send_);
    MPI_Irecv(&ping_in_, 1, MPI_INT, MPI_ANY_SOURCE, kPingTag, ping_comm_, &ping_recv_);
  }
}

std::string StallWatch::unanswered_pings() {
  if (ping_comm_ == MPI_COMM_NULL) return {};
  const size_t peers = peers_.size();
  std::vector<MPI_Request> req(2 * peers, MPI_REQUEST_NULL);
  std::vector<int> pong(peers, -1), flags(peers, 0);
  const int me = rank_;
  for (size_t i = 0; i < peers; ++i) {
    MPI_Irecv(&pong[i], 1, MPI_INT, peers_[i], kPongTag, ping_comm_, &req[i]);
    MPI_Isend(&me, 1, MPI_INT, peers_[i], kPingTag, ping_comm_, &req[peers + i]);
  }
  const double until = now_seconds() + 2.0;
  size_t answered = 0;
  while (answered < peers && now_seconds() < until) {
    answer_pings();  // the others may be asking at the same moment
    for (size_t i = 0; i < peers; ++i) {
      if (flags[i]) continue;
      if (MPI_Test(&req[i], &flags[i], MPI_STATUS_IGNORE) != MPI_SUCCESS) flags[i] = 0;  // a peer gone: no answer
      if (flags[i]) ++answered;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::string missing;
  int n = 0;
  for (size_t i = 0; i < peers; ++i)
    if (!flags[i]) {
      if (n < 8) missing += std::string(n ? ", " : "") + describe_rank(peers_[i]);
      ++n;
    }
  if (n > 8) missing += " and " + std::to_string(n - 8) + " more";
  return missing;  // the requests stay posted: the process exits next
}

std::string StallWatch::describe_rank(int r) const {
  return "rank " + std::to_string(r) + " (" + hosts_[static_cast<size_t>(r)] + ")";
}

void StallWatch::report_and_exit(const std::string& line) {
  std::lock_guard lock(report_mutex_);  // one line per process, whoever sees the stall first
  std::fprintf(stderr, "cifar_mpi: error (rank %d): %s\n", rank_, line.c_str());
  std::fflush(nullptr);
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
  polling_.store(true, std::memory_order_relaxed);
  check_.t0 = check_.last_poll = now_seconds();
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
    if (now >= check_.deadline)
      report_and_exit("stall: " + missing + (n_missing == 1 ? " has" : " have") + " not arrived" + where +
                      " within --stall-timeout " + seconds_text(timeout_) + "; ending the job");
    if (!check_.warned) {
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
  const char* warned_for = nullptr;
  double warned_start = -1;
  std::unique_lock lock(mutex_);
  double last_wake = now_seconds(), quiet_until = 0;
  while (!stop_) {
    cv_.wait_for(lock, kWatchdogPoll, [&] { return stop_.load(); });
    if (stop_) return;
    const double woke = now_seconds();
    const bool frozen = woke - last_wake > kFrozenGap;  // this process was suspended
    last_wake = woke;
    // A process just continued (mpirun sends SIGCONT before it kills) was the silent one: it does
    // not answer the pings that ask who is silent.
    if (frozen) quiet_until = woke + 3.0;
    // Only a rank that is itself waiting answers (a ping comes only after S of waiting, when every
    // live rank waits too): no MPI call from this thread while the steps run normally.
    const char* waiting_in = phase_.load(std::memory_order_acquire);
    const bool waiting = polling_.load(std::memory_order_acquire) ||
                         (waiting_in && woke - phase_start_.load(std::memory_order_relaxed) > 1.0);
    if (waiting && woke >= quiet_until) answer_pings();
    if (frozen) {
      double start = phase_start_.load(std::memory_order_relaxed);
      phase_start_.compare_exchange_strong(start, woke);  // its wait starts again
      continue;
    }
    const char* phase = phase_.load(std::memory_order_acquire);
    const double start = phase_start_.load(std::memory_order_relaxed);
    if (!phase || polling_.load(std::memory_order_acquire)) continue;
    const double waited = now_seconds() - start;
    if (waited < timeout_ / 4) continue;  // the common case: nothing to say, nothing allocated
    const size_t step = step_.load(std::memory_order_relaxed);
    std::string who;
    if (world_ == 2)
      who = describe_rank(1 - rank_);
    else if (const int late = last_late_.load(std::memory_order_relaxed); late >= 0 && late != rank_)
      who = "an unknown rank (the last to arrive at this step's first reduction was " + describe_rank(late) + ")";
    else
      who = "an unknown rank";
    const std::string where = " in " + std::string(phase) + " at global step " + std::to_string(step + 1);
    if (waited >= timeout_) {
      lock.unlock();
      const std::string limit = " within --stall-timeout " + seconds_text(timeout_) + "; ending the job";
      if (ping_comm_ != MPI_COMM_NULL) {
        const std::string silent = unanswered_pings();
        if (silent.empty())
          report_and_exit("stall: every rank answers, but " + std::string(phase) + " did not complete at global step " +
                          std::to_string(step + 1) + limit);
        who = silent;
      }
      report_and_exit("stall: " + who + " did not arrive" + where + limit);
    }
    if (warned_for != phase || warned_start != start) {
      warned_for = phase, warned_start = start;
      std::fprintf(stderr, "cifar_mpi: warning (rank %d): waiting %s for %s%s\n", rank_, seconds_text(waited).c_str(),
                   who.c_str(), where.c_str());
      std::fflush(stderr);
    }
  }
}

}  // namespace cifar
