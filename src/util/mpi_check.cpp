#include "cifar_mpi/util/mpi_check.hpp"

#include <climits>

namespace cifar {

int checked_mpi_count(size_t count) {
  if (count > static_cast<size_t>(INT_MAX))
    throw Error("message of " + std::to_string(count) + " elements exceeds MPI's int count limit");
  return static_cast<int>(count);
}

}  // namespace cifar
