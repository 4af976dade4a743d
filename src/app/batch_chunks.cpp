#include "cifar_mpi/app/batch_chunks.hpp"

#include <algorithm>
#include <bit>

namespace cifar {

std::vector<size_t> batch_chunks(size_t images, int ranks, size_t smallest, size_t largest) {
  std::vector<size_t> sizes;
  const size_t share = 2 * static_cast<size_t>(std::max(ranks, 1));
  for (size_t left = images; left > 0;) {
    const size_t guided = std::bit_floor(std::max<size_t>(left / share, 1));
    const size_t n = std::min(left, std::clamp(guided, smallest, std::max(smallest, largest)));
    sizes.push_back(n);
    left -= n;
  }
  return sizes;
}

}  // namespace cifar
