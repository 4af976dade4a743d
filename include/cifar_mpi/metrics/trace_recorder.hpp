#pragma once
// A timeline of the first steps of a run as Chrome trace events (chrome://tracing, Perfetto):
// one process per rank; thread 0 is the main thread (data, forward, each layer's backward,
// wait, update), thread 1 the communication (each bucket's reduction from start to end), so a
// reduction drawn under a layer's backward is overlap made visible.
// The hot path only appends fixed-size records to a preallocated array; the JSON is written once,
// at the end, by rank 0 after gathering every rank's records.
#include <mpi.h>

#include <array>
#include <cstddef>
#include <filesystem>
#include <string_view>
#include <vector>

namespace cifar {

class TraceRecorder {
 public:
  static constexpr int kMainThread = 0, kCommThread = 1;

  // Records the first `max_steps` steps (0 = disabled).
  explicit TraceRecorder(size_t max_steps, size_t events_per_step = 32);
  bool enabled() const { return max_steps_ > 0; }
  bool records(size_t step) const { return step < max_steps_; }
  // Timestamps are written relative to this (call after a barrier so ranks line up).
  void set_origin(double t0) { origin_ = t0; }
  // Appends an event; names longer than 31 bytes are cut. Beyond the reserve it is dropped.
  void add(std::string_view name, int thread, double begin, double end);

  // Collective. Rank 0 writes the JSON atomically (temporary file, then rename).
  void write(const std::filesystem::path& path, MPI_Comm comm) const;

  struct Event {
    std::array<char, 32> name{};
    int thread = 0;
    double begin = 0, end = 0;  // seconds since origin
  };

 private:
  size_t max_steps_;
  double origin_ = 0;
  std::vector<Event> events_;
};

}  // namespace cifar
