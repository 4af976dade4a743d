#include "cifar_mpi/comm/buffer_broadcast.hpp"

#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

void broadcast_buffers(ParamArena& arena, MPI_Comm comm) {
  const auto buffers = arena.buffers();
  if (buffers.empty()) return;
  MPI_CHECK(MPI_Bcast(buffers.data(), checked_mpi_count(buffers.size()), MPI_FLOAT, 0, comm));
}

}  // namespace cifar
