#include "cifar_mpi/comm/replica_sum.hpp"

#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

ReplicaSum::ReplicaSum(MPI_Comm comm) { MPI_CHECK(MPI_Comm_dup(comm, &comm_)); }

ReplicaSum::~ReplicaSum() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

void ReplicaSum::operator()(std::span<double> values) const {
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, values.data(), checked_mpi_count(values.size()), MPI_DOUBLE, MPI_SUM, comm_));
}

std::function<void(std::span<double>)> as_function(std::shared_ptr<const ReplicaSum> sum) {
  return [sum = std::move(sum)](std::span<double> values) { (*sum)(values); };
}

}  // namespace cifar
