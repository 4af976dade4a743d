// Test loss and accuracy after an epoch. Each rank evaluates a contiguous slice of the test set
// (no padding, unlike training: every image counts once) and one MPI_Allreduce sums the slices.
#include "cifar_mpi/util/mpi_check.hpp"
#include "training_run.hpp"

namespace cifar {

std::pair<double, double> evaluate(TrainingRun& run) {
  const CifarSet& test = run.data.test;
  const size_t batch = run.batch;
  const size_t n = test.size(), begin = n * run.rank / run.world, end = n * (run.rank + 1) / run.world;
  std::vector<size_t> idx;
  std::vector<int32_t> labels(batch);
  double sums[2] = {0, 0};  // loss * count, correct
  for (size_t i = begin; i < end; i += batch) {
    const size_t b = std::min(batch, end - i);
    idx.resize(b);
    for (size_t k = 0; k < b; ++k) idx[k] = i + k;
    SimpleCnn& net = run.nets.get(b);
    gather_batch(test, idx, net.input(), labels.data());
    const LossResult r = net.forward(run.stream, labels.data());
    sums[0] += static_cast<double>(r.loss) * static_cast<double>(b);
    sums[1] += static_cast<double>(r.correct);
  }
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, run.comm));
  return {sums[0] / static_cast<double>(n), sums[1] / static_cast<double>(n)};
}

}  // namespace cifar
