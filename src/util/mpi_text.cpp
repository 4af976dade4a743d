#include "cifar_mpi/util/mpi_text.hpp"

#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

std::string broadcast_text(std::string text, int root, MPI_Comm comm) {
  int rank = 0;
  MPI_CHECK(MPI_Comm_rank(comm, &rank));
  int n = rank == root ? checked_mpi_count(text.size()) : 0;
  MPI_CHECK(MPI_Bcast(&n, 1, MPI_INT, root, comm));
  text.resize(static_cast<size_t>(n));
  if (n > 0) MPI_CHECK(MPI_Bcast(text.data(), n, MPI_CHAR, root, comm));
  return text;
}

}  // namespace cifar
