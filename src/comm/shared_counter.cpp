#include "cifar_mpi/comm/shared_counter.hpp"

#include <atomic>
#include <exception>
#include <string>

#include "cifar_mpi/comm/host_layout.hpp"
#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

SharedCounter::SharedCounter(MPI_Comm comm, int host_color) {
  int rank = 0, size = 1;
  MPI_CHECK(MPI_Comm_rank(comm, &rank));
  MPI_CHECK(MPI_Comm_size(comm, &size));
  {
    const HostLayout hosts(comm, host_color);
    // Hosts counted by their first ranks (hosts() counts only those with this rank's local rank).
    int first = hosts.local_rank() == 0 ? 1 : 0, count = 0;
    MPI_CHECK(MPI_Allreduce(&first, &count, 1, MPI_INT, MPI_SUM, comm));
    if (count != 1)
      throw Error("the " + std::to_string(size) + " ranks are on " + std::to_string(count) +
                  " hosts; a counter in shared memory needs them on one");
  }
  // Rank 0 owns the cache line; the others map it. The window stays locked (passive target, no
  // check) for its lifetime, the pattern MPI-3 gives for direct loads and stores.
  void* base = nullptr;
  MPI_CHECK(MPI_Win_allocate_shared(rank == 0 ? 64 : 0, 1, MPI_INFO_NULL, comm, &base, &win_));
  MPI_Aint bytes = 0;
  int unit = 0;
  void* owner = nullptr;
  MPI_CHECK(MPI_Win_shared_query(win_, 0, &bytes, &unit, &owner));
  value_ = static_cast<uint64_t*>(owner);
  MPI_CHECK(MPI_Win_lock_all(MPI_MODE_NOCHECK, win_));
  if (rank == 0) std::atomic_ref<uint64_t>(*value_).store(0, std::memory_order_release);
  MPI_CHECK(MPI_Win_sync(win_));
  MPI_CHECK(MPI_Barrier(comm));  // nobody draws before the counter is zero
  MPI_CHECK(MPI_Win_sync(win_));
}

SharedCounter::~SharedCounter() {
  if (win_ == MPI_WIN_NULL) return;
  // Unwinding from an error on this rank: the others may never come here, and MPI_Win_free waits
  // for them. The window is left to the end of the job that follows (main's error path).
  if (std::uncaught_exceptions() > 0) return;
  MPI_Win_unlock_all(win_);
  MPI_Win_free(&win_);  // collective: every rank destroys its counter at the same point
}

uint64_t SharedCounter::draw() {
  static_assert(std::atomic_ref<uint64_t>::is_always_lock_free, "needs an address-free atomic");
  return std::atomic_ref<uint64_t>(*value_).fetch_add(1, std::memory_order_relaxed);
}

}  // namespace cifar
