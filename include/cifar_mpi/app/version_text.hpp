#pragma once
// cifar_mpi --version: what a bug report or a comparison of runs needs to know about the build
// and the machine it runs on.
#include <string>

namespace cifar {

// Four lines: the program's version (the CMake project version) and git commit, oneDNN's version
// and the ISA it runs (dnnl_get_effective_cpu_isa: the CPU's, lowered by ONEDNN_MAX_CPU_ISA), and
// the MPI library (the first line of MPI_Get_library_version).
std::string version_text();

}  // namespace cifar
