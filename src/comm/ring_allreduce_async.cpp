// Non-blocking ring all-reduce: the steps of ring_allreduce.cpp (ring diagram and per-step
// table there) as a state machine. Step k posts MPI_Irecv of the left neighbour's segment
// (into scratch during the reduce-scatter, into place during the all-gather) and MPI_Isend of
// our segment; when both complete, a reduce-scatter step adds scratch into place, and step
// k + 1 is posted. The additions are the blocking form's, in the same order: same bits.
#include "cifar_mpi/comm/ring_allreduce_async.hpp"

#include <exception>

#include "cifar_mpi/comm/ring_allreduce.hpp"
#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

RingAllreduce::~RingAllreduce() {
  if (!in_flight_) return;
  try {
    wait();
  } catch (const std::exception&) {
    // A destructor cannot report; MPI errors in wait() are reported to its callers.
  }
}

void RingAllreduce::start(float* data, size_t count, float* scratch, MPI_Comm comm, int tag_base,
                          RingPhases phases) {
  if (in_flight_) throw Error("RingAllreduce::start: previous ring all-reduce still in flight");
  MPI_CHECK(MPI_Comm_rank(comm, &rank_));
  MPI_CHECK(MPI_Comm_size(comm, &size_));
  data_ = data;
  scratch_ = scratch;
  count_ = count;
  comm_ = comm;
  step_ = phases == RingPhases::all_gather ? size_ - 1 : 0;
  end_step_ = phases == RingPhases::reduce_scatter ? size_ - 1 : 2 * (size_ - 1);
  if (size_ == 1) return;  // nothing to exchange: complete already
  tag0_ = ring_first_tag(size_, tag_base);
  // Both segment counts of every step must fit MPI's int before anything is posted.
  checked_mpi_count(ring_segment(count, size_, 0).count);
  in_flight_ = true;
  post_step();
}

void RingAllreduce::post_step() {
  const int right = (rank_ + 1) % size_, left = (rank_ - 1 + size_) % size_;
  const RingSegment send = ring_segment(count_, size_, ring_send_segment(rank_, size_, step_));
  const RingSegment recv = ring_segment(count_, size_, ring_recv_segment(rank_, size_, step_));
  float* recv_buf = step_ < size_ - 1 ? scratch_ : data_ + recv.offset;
  const int tag = tag0_ + step_;
  MPI_CHECK(MPI_Irecv(recv_buf, checked_mpi_count(recv.count), MPI_FLOAT, left, tag, comm_, &requests_[0]));
  MPI_CHECK(MPI_Isend(data_ + send.offset, checked_mpi_count(send.count), MPI_FLOAT, right, tag, comm_,
                      &requests_[1]));
}

void RingAllreduce::finish_step() {
  if (step_ < size_ - 1) {
    const RingSegment recv = ring_segment(count_, size_, ring_recv_segment(rank_, size_, step_));
    ring_reduce_add(data_ + recv.offset, scratch_, recv.count);
  }
  if (++step_ == end_step_) {
    in_flight_ = false;
    return;
  }
  post_step();
}

bool RingAllreduce::progress() {
  while (in_flight_) {
    int done = 0;
    MPI_CHECK(MPI_Testall(2, requests_, &done, MPI_STATUSES_IGNORE));
    if (!done) return false;
    finish_step();
  }
  return true;
}

void RingAllreduce::wait() {
  while (in_flight_) {
    MPI_CHECK(MPI_Waitall(2, requests_, MPI_STATUSES_IGNORE));
    finish_step();
  }
}

}  // namespace cifar
