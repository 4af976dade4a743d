#include "cifar_mpi/app/version_text.hpp"

#include <algorithm>
#include <dnnl.hpp>

#include "cifar_mpi/model/conv_algo.hpp"
#include "cifar_mpi/util/mpi_library.hpp"

namespace cifar {

namespace {

std::string onednn_version() {
  const dnnl_version_t* v = dnnl_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

}  // namespace

std::string version_text() {
  return std::string("cifar_mpi ") + CIFAR_VERSION + "\n" + "git commit " + CIFAR_GIT_COMMIT + "\n" + "oneDNN " +
         onednn_version() + ", ISA in use " + effective_cpu_isa_name() + "\n" + "MPI library " + mpi_library_version() +
         "\n";
}

}  // namespace cifar
