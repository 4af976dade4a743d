#pragma once
// MPI_CHECK(call): MPI's default handler aborts with little context; we install
// MPI_ERRORS_RETURN on the world communicator and turn a failure into a cifar::Error that
// names the call, the MPI error string and file:line.
#include <mpi.h>

#include <string>

#include "cifar_mpi/util/error.hpp"

namespace cifar {

inline void mpi_check(int rc, const char* call, const char* file, int line) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw Error(std::string("MPI error in ") + call + " at " + file + ":" + std::to_string(line) + ": " +
              std::string(msg, static_cast<size_t>(len)));
}

// MPI counts are int: refuse rather than truncate a count that does not fit.
int checked_mpi_count(size_t count);

}  // namespace cifar

#define MPI_CHECK(call) ::cifar::mpi_check((call), #call, __FILE__, __LINE__)
