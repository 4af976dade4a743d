#pragma once
// Which dataset indices a rank trains on in an epoch, with torch.utils.data.DistributedSampler's
// semantics: a permutation of 0..n-1 drawn from (seed, epoch) (or file order without shuffle),
// padded by wrapping to a multiple of num_replicas (or truncated with drop_last), and rank r
// taking positions r, r+N, r+2N, ... So with shuffle off the union of the ranks' s-th batches is
// the file-order global batch s, and N ranks at batch B/N see exactly what one rank sees at B.
// (The permutation is our own (std::mt19937_64 + Fisher-Yates), not torch's bit stream.)
#include <cstddef>
#include <cstdint>
#include <vector>

namespace cifar {

class DistributedSampler {
 public:
  DistributedSampler(size_t dataset_size, int num_replicas, int rank, bool shuffle, uint64_t seed,
                     bool drop_last);

  // The indices of `epoch` for this rank, in training order (num_samples() of them).
  std::vector<size_t> indices(uint64_t epoch) const;
  size_t num_samples() const { return num_samples_; }

 private:
  size_t dataset_size_;
  int num_replicas_;
  int rank_;
  bool shuffle_;
  uint64_t seed_;
  bool drop_last_;
  size_t num_samples_;
};

}  // namespace cifar
