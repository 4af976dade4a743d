#include "cifar_mpi/comm/host_layout.hpp"

#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

HostLayout::HostLayout(MPI_Comm comm, int host_color) {
  try {
    int rank = 0;
    MPI_CHECK(MPI_Comm_rank(comm, &rank));
    if (host_color < 0)
      MPI_CHECK(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local_));
    else
      MPI_CHECK(MPI_Comm_split(comm, host_color, rank, &local_));
    MPI_CHECK(MPI_Comm_rank(local_, &local_rank_));
    MPI_CHECK(MPI_Comm_size(local_, &ranks_per_host_));
    MPI_CHECK(MPI_Comm_split(comm, local_rank_, rank, &cross_));
    MPI_CHECK(MPI_Comm_size(cross_, &hosts_));
    int sizes[2] = {ranks_per_host_, -ranks_per_host_};  // max and -min in one call
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, sizes, 2, MPI_INT, MPI_MAX, comm));
    uniform_ = sizes[0] == -sizes[1];
  } catch (...) {
    free_comms();  // the destructor does not run for a constructor that throws
    throw;
  }
}

HostLayout::~HostLayout() { free_comms(); }

void HostLayout::free_comms() {
  // Freeing is collective in name only (Open MPI frees locally); errors cannot be reported here.
  if (cross_ != MPI_COMM_NULL) MPI_Comm_free(&cross_);
  if (local_ != MPI_COMM_NULL) MPI_Comm_free(&local_);
}

}  // namespace cifar
