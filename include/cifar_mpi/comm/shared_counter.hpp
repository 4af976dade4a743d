#pragma once
// A counter the ranks of one host draw tickets from: one 64-bit integer in an MPI shared-memory
// window, incremented with a lock-free atomic (address-free, so the processes that map the page
// see one another's increments at once, with no MPI call and no progress from the owner). It is
// what lets --balance dynamic hand a step's images out in chunks: a rank the host slows down
// simply draws fewer of them.
#include <mpi.h>

#include <cstdint>

namespace cifar {

class SharedCounter {
 public:
  // Collective over `comm`. Throws cifar::Error if its ranks are not all on one host (a
  // shared-memory domain, MPI_COMM_TYPE_SHARED; or, for tests, the hosts host_color >= 0 draws as
  // HostLayout does): the message says how many hosts they span.
  explicit SharedCounter(MPI_Comm comm, int host_color = -1);
  ~SharedCounter();
  SharedCounter(const SharedCounter&) = delete;
  SharedCounter& operator=(const SharedCounter&) = delete;

  // The next ticket: 0, 1, 2, ... over all the ranks together, each drawn exactly once.
  uint64_t draw();

 private:
  MPI_Win win_ = MPI_WIN_NULL;
  uint64_t* value_ = nullptr;
};

}  // namespace cifar
