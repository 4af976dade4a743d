#include "cifar_mpi/app/version_text.hpp"

#include <mpi.h>

#include <algorithm>
#include <dnnl.hpp>

#include "cifar_mpi/model/conv_algo.hpp"

namespace cifar {

namespace {

std::string onednn_version() {
  const dnnl_version_t* v = dnnl_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

// MPI_Get_library_version may be called before MPI_Init; Open MPI's answer spans lines.
std::string mpi_library() {
  char buf[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int len = 0;
  MPI_Get_library_version(buf, &len);
  std::string s(buf, static_cast<size_t>(std::max(0, len)));
  s = s.substr(0, s.find_first_of("\r\n"));
  while (!s.empty() && (s.back() == ' ' || s.back() == ',' || s.back() == '\0')) s.pop_back();
  return s;
}

}  // namespace

std::string version_text() {
  return std::string("cifar_mpi ") + CIFAR_VERSION + "\n" + "git commit " + CIFAR_GIT_COMMIT + "\n" + "oneDNN " +
         onednn_version() + ", ISA in use " + effective_cpu_isa_name() + "\n" + "MPI library " + mpi_library() +
         "\n";
}

}  // namespace cifar
