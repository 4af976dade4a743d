#pragma once
// How --balance dynamic cuts a step's images into the chunks the ranks draw (guided
// self-scheduling, as OpenMP's schedule(guided)): big chunks first, while the ranks are far from
// the end, so that few passes are needed; then ever smaller ones, so that when the images run out
// the ranks finish within a small chunk of each other. Sizes are powers of two (a network is built
// per size) between `smallest` and `largest`, the last one whatever remains.
#include <cstddef>
#include <vector>

namespace cifar {

// images: the step's images over all ranks; ranks >= 1; 1 <= smallest <= largest.
// The sizes add up to `images`; each is about a 2*ranks-th of what remains before it.
std::vector<size_t> batch_chunks(size_t images, int ranks, size_t smallest, size_t largest);

}  // namespace cifar
