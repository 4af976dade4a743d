#pragma once
// One interface for every all-reduce the trainer can run, nccl-tests style: each algorithm is a
// small file behind it, and one table (allreduce_table.cpp) names them all. The gradient reducer,
// allreduce_bench and the collective tests choose from that table, so a new algorithm is one
// file plus one row.
//
// Every algorithm sums a float32 buffer in place across the ranks of a communicator (averaging is
// the caller's, in one place), with caller-owned scratch: no allocation inside a step.
//
//   auto chosen = make_allreduce(strategy, wire, layout, comm);   // once, at start-up
//   std::vector<float> scratch(chosen.algo->scratch_floats(largest));
//   chosen.algo->start(data, count, scratch.data());
//   while (!chosen.algo->progress()) { /* compute, or sleep */ }   // or chosen.algo->wait()
//
// Blocking use is start + wait. MPI's all-reduce takes its form from the first call after
// start(): wait() runs the blocking MPI_Allreduce, progress() posts MPI_Iallreduce and tests it
// (mpi_allreduce.hpp), so for it every rank must use the same form. All ranks must start the
// same operations in the same order.
#include <mpi.h>

#include <cstddef>
#include <exception>
#include <memory>
#include <span>
#include <string>

#include "cifar_mpi/comm/allreduce_strategy.hpp"
#include "cifar_mpi/comm/wire_dtype.hpp"
#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

class HostLayout;

class Allreduce {
 public:
  Allreduce() = default;
  Allreduce(const Allreduce&) = delete;  // posted requests point into the object
  Allreduce& operator=(const Allreduce&) = delete;
  virtual ~Allreduce() = default;

  // Floats of scratch start() needs for a buffer of `count` floats (never less for a larger count).
  virtual size_t scratch_floats(size_t count) const = 0;
  // Starts summing data[0, count). Throws cifar::Error if an operation is already in flight.
  virtual void start(float* data, size_t count, float* scratch) = 0;
  // Advances as far as possible without blocking; true once the sum is complete (and at once
  // when nothing is in flight).
  virtual bool progress() = 0;
  // Blocks until the sum is complete.
  virtual void wait() {
    while (!progress()) {
    }
  }
};

// For an algorithm's destructor: completes an operation still in flight (the other ranks are
// waiting for its messages). A destructor cannot report; MPI errors in wait() reach its callers.
inline void complete_in_destructor(Allreduce& op) noexcept {
  try {
    op.wait();
  } catch (const std::exception&) {
  }
}

// For a step-by-step algorithm: waits for (block) or tests the step's two requests (send and
// receive); true once both are complete.
inline bool step_requests_done(MPI_Request (&requests)[2], bool block) {
  int done = 1;
  if (block)
    MPI_CHECK(MPI_Waitall(2, requests, MPI_STATUSES_IGNORE));
  else
    MPI_CHECK(MPI_Testall(2, requests, &done, MPI_STATUSES_IGNORE));
  return done != 0;
}

// One row per algorithm. `hierarchical` rows run where several hosts have several ranks each
// (HostLayout::hierarchical()) and take the layout; the others get none.
struct AllreduceRow {
  const char* name;
  AllreduceStrategy strategy;
  bool hierarchical;
  std::unique_ptr<Allreduce> (*make)(MPI_Comm comm, WireDtype wire, std::unique_ptr<HostLayout> hosts);
};

// Every algorithm; each supports every wire type (fp32, bf16, fp16).
std::span<const AllreduceRow> allreduce_table();

struct ChosenAllreduce {
  std::unique_ptr<Allreduce> algo;
  const AllreduceRow* row = nullptr;
  std::string description;  // for the start-up line: "ring", "hierarchical rhd (2 hosts x 2 ranks)", ...
};

// The row for (strategy, wire, layout) on this communicator, made. Collective over `comm` (the
// ring and rhd with RingLayout::hosts group the ranks by host, and take their hierarchical row
// where HostLayout::hierarchical()); host_color as in HostLayout.
ChosenAllreduce make_allreduce(AllreduceStrategy strategy, WireDtype wire, RingLayout layout, MPI_Comm comm,
                               int host_color = -1);

}  // namespace cifar
