#include "compression_forecast.hpp"

#include <cstdio>

namespace cifar {

namespace {

std::string rate_text(double bits_per_s) {
  char s[32];
  if (bits_per_s >= 1e9)
    std::snprintf(s, sizeof s, "%.3g Gbit/s", bits_per_s / 1e9);
  else
    std::snprintf(s, sizeof s, "%.3g Mbit/s", bits_per_s / 1e6);
  return s;
}

}  // namespace

std::string CompressionForecast::summary() const {
  char s[256];
  std::snprintf(s, sizeof s, "all-reduce per step %.1f ms plain, %.1f ms compressed (%.1f ms of it local work)",
                plain * 1e3, compressed * 1e3, work * 1e3);
  return std::string(s) + (breakeven_bits_per_s > 0 ? ": compression pays below " + rate_text(breakeven_bits_per_s)
                                                     : ": compression does not pay on any link");
}

CompressionForecast forecast_compression(const LinkCost& link, size_t arena_floats, size_t compressed_floats,
                                         double work_seconds, int world, size_t wire_bytes) {
  CompressionForecast f;
  f.plain = link.time(arena_floats * sizeof(float));
  f.compressed = 2 * link.alpha + link.beta * static_cast<double>(compressed_floats * sizeof(float)) + work_seconds;
  f.work = work_seconds;
  if (compressed_floats < arena_floats && world > 1) {
    const double beta_even = (link.alpha + work_seconds) /
                             (static_cast<double>((arena_floats - compressed_floats) * sizeof(float)));
    const double per_link = 2.0 * (world - 1) / world * static_cast<double>(wire_bytes) / sizeof(float);
    f.breakeven_bits_per_s = beta_even > 0 ? 8.0 * per_link / beta_even : 0;
  }
  return f;
}

}  // namespace cifar
