#pragma once
// Whether --compress powersgd pays on this link: the all-reduce's share of a step with and
// without compression under the alpha-beta link model (link_model.hpp), and the link rate below
// which compression starts to pay. PowerSGD's two all-reduces are dependent (Q needs the reduced
// P), so its latency counts twice; its local work (the matrix products and orthogonalisations)
// is timed once at start-up and added.
//   plain:      alpha + beta * 4 F                   (F: the arena's floats)
//   compressed: 2 alpha + beta * 4 (U + P + Q) + W    (U uncompressed, P and Q the factors, W the work)
// Compression pays while beta > (alpha + W) / (4 (F - U - P - Q)); beta is per float32 byte of
// the buffer, so a 16-bit wire type is already in it. As a link rate: a ring or recursive
// halving/doubling all-reduce of B bytes carries 2(N-1)/N B (times wire bytes / 4) over each
// link, so beta = 2(N-1)/N * (wire bytes / 4) / rate.
// Private to src/app.
#include <cstddef>
#include <string>

#include "cifar_mpi/comm/link_model.hpp"

namespace cifar {

struct CompressionForecast {
  double plain = 0;       // s of all-reduce per step without compression
  double compressed = 0;  // s with it (both all-reduces and the local work)
  double work = 0;        // s of local work (included in compressed)
  double breakeven_bits_per_s = 0;  // compression pays on links slower than this (0: never)
  bool pays() const { return compressed < plain; }
  // "all-reduce per step 124.1 ms plain, 9.8 ms compressed (4.1 ms of it local work): pays below 2.1 Gbit/s"
  std::string summary() const;
};

CompressionForecast forecast_compression(const LinkCost& link, size_t arena_floats, size_t compressed_floats,
                                         double work_seconds, int world, size_t wire_bytes);

}  // namespace cifar
