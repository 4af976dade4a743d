#include "cifar_mpi/metrics/trace_recorder.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "cifar_mpi/util/error.hpp"
#include "cifar_mpi/util/atomic_file.hpp"
#include "cifar_mpi/util/mpi_check.hpp"

namespace cifar {

TraceRecorder::TraceRecorder(size_t max_steps, size_t events_per_step) : max_steps_(max_steps) {
  events_.reserve(max_steps * events_per_step);
}

void TraceRecorder::add(std::string_view name, int thread, double begin, double end) {
  if (events_.size() == events_.capacity()) return;  // never allocate inside a step
  Event e;
  const size_t n = std::min(name.size(), e.name.size() - 1);
  std::memcpy(e.name.data(), name.data(), n);
  e.thread = thread;
  e.begin = begin - origin_;
  e.end = end - origin_;
  events_.push_back(e);
}

void TraceRecorder::write(const std::filesystem::path& path, MPI_Comm comm) const {
  int rank = 0, world = 1;
  MPI_CHECK(MPI_Comm_rank(comm, &rank));
  MPI_CHECK(MPI_Comm_size(comm, &world));
  const int my_bytes = checked_mpi_count(events_.size() * sizeof(Event));
  std::vector<int> bytes(static_cast<size_t>(world)), displs(static_cast<size_t>(world));
  MPI_CHECK(MPI_Gather(&my_bytes, 1, MPI_INT, bytes.data(), 1, MPI_INT, 0, comm));
  size_t total = 0;
  for (int r = 0; r < world; ++r) {
    displs[static_cast<size_t>(r)] = checked_mpi_count(total);
    total += static_cast<size_t>(bytes[static_cast<size_t>(r)]);
  }
  std::vector<Event> all(rank == 0 ? total / sizeof(Event) : 0);
  MPI_CHECK(MPI_Gatherv(events_.data(), my_bytes, MPI_BYTE, all.data(), bytes.data(), displs.data(), MPI_BYTE, 0,
                        comm));
  if (rank != 0) return;

  const auto tmp = temp_path_for(path);
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) throw Error(path.string() + ": cannot write the trace (missing or read-only directory?)");
  std::fprintf(f, "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n");
  bool first = true;
  auto sep = [&] {
    if (!first) std::fprintf(f, ",\n");
    first = false;
  };
  for (int r = 0; r < world; ++r) {
    sep();
    std::fprintf(f, R"({"name": "process_name", "ph": "M", "pid": %d, "args": {"name": "rank %d"}})", r, r);
    sep();
    std::fprintf(f, R"({"name": "thread_name", "ph": "M", "pid": %d, "tid": 0, "args": {"name": "compute"}})", r);
    sep();
    std::fprintf(f, R"({"name": "thread_name", "ph": "M", "pid": %d, "tid": 1, "args": {"name": "communication"}})",
                 r);
  }
  for (int r = 0; r < world; ++r) {
    const size_t begin = static_cast<size_t>(displs[static_cast<size_t>(r)]) / sizeof(Event);
    const size_t count = static_cast<size_t>(bytes[static_cast<size_t>(r)]) / sizeof(Event);
    for (size_t i = begin; i < begin + count; ++i) {
      const Event& e = all[i];
      sep();
      // Complete events ("X") in microseconds.
      std::fprintf(f, R"({"name": "%s", "ph": "X", "pid": %d, "tid": %d, "ts": %.3f, "dur": %.3f})", e.name.data(), r,
                   e.thread, 1e6 * e.begin, 1e6 * std::max(0.0, e.end - e.begin));
    }
  }
  std::fprintf(f, "\n]}\n");
  // fclose writes what fflush left and can fail too (a full disk, an NFS server): both must succeed.
  const bool flushed = std::fflush(f) == 0 && std::ferror(f) == 0;
  const bool ok = std::fclose(f) == 0 && flushed;
  if (!ok) {
    std::filesystem::remove(tmp);
    throw Error(path.string() + ": writing the trace failed (disk full?)");
  }
  commit_temp_file(tmp, path);
}

}  // namespace cifar
