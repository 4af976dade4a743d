#pragma once
// The MPI library's name and version, for --version and the metrics file's attributes.
#include <string>

namespace cifar {

// The first line of MPI_Get_library_version (Open MPI's answer spans lines), without trailing
// separators. Callable before MPI_Init.
std::string mpi_library_version();

}  // namespace cifar
