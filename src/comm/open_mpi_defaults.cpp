// What cifar_mpi changes in Open MPI's defaults (see open_mpi_defaults.hpp for why).
#include "cifar_mpi/comm/open_mpi_defaults.hpp"

#include <cstdlib>

namespace cifar {

void apply_open_mpi_defaults() {
  setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "3", /*overwrite=*/0);
  setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", /*overwrite=*/0);
  setenv("OMPI_MCA_btl_tcp_eager_limit", "1048576", /*overwrite=*/0);
}

}  // namespace cifar
