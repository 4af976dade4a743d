// allreduce_bench: nccl-tests-style bandwidth of MPI_Allreduce and of our ring all-reduce
// (float32 sum, in place) over message sizes min..max bytes in x2 steps.
//
//   mpirun -np 2 allreduce_bench [--min-bytes 4096] [--max-bytes 67108864] [--iters 20]
//                                [--warmup 5] [--rounds 5] [--csv FILE] [--ring-layout hosts|flat]
//
// "mpi" and "ring" are the all-reduces cifar_mpi runs for --allreduce mpi and ring, made from the
// same table (allreduce.hpp, make_allreduce): the ring, with several hosts of several ranks each,
// is hierarchical (hierarchical_allreduce.hpp) unless --ring-layout flat; the header line says which.
//
// Time per op: each rank's mean over --iters timed calls, then the maximum over ranks; the
// collectives are timed in alternation for --rounds rounds and each keeps its best round.
// algbw = bytes / time; busbw = algbw * 2(N-1)/N, the per-link traffic of a bandwidth-optimal
// all-reduce, comparable across N (nccl-tests doc/PERFORMANCE.md). GB/s are 1e9 bytes/s.
// The timed loops reduce zeros (they stay zeros: no overflow, no denormals); correctness is
// checked once per size and algorithm outside them, exactly, on integer-valued inputs.
// A large memcpy's bandwidth is printed for scale: on one machine every transfer is a copy.
// On one node, MPI_Allreduce from 32 MiB up may be dominated by page faults: it allocates
// temporaries per call, glibc serves blocks over 32 MiB with fresh mmap'd pages, and a fault can
// cost tens of microseconds in a VM. The ring reuses caller scratch and is immune; to time MPI
// without this, run with -x MALLOC_MMAP_THRESHOLD_=1073741824 -x MALLOC_TRIM_THRESHOLD_=1073741824.
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "cifar_mpi/comm/allreduce.hpp"
#include "cifar_mpi/comm/host_layout.hpp"
#include "cifar_mpi/util/error.hpp"
#include "cifar_mpi/util/mpi_check.hpp"

namespace {

struct Config {
  size_t min_bytes = 4096;
  size_t max_bytes = size_t{64} << 20;
  int iters = 20;
  int warmup = 5;
  int rounds = 5;
  std::string csv;
  bool flat_ring = false;
};

// One all-reduce implementation: in place on data[0, count), scratch as large as the ring needs.
struct Collective {
  const char* name;
  std::function<void(float* data, size_t count, float* scratch)> run;
};

struct Result {
  double time_us, algbw, busbw;
  bool ok;
};

// Integer-valued inputs whose sums are exact in float: rank r, position i.
float input_value(int rank, size_t i) { return static_cast<float>((rank + 1) * 1000 + (i * (rank + 1) + 7) % 4099); }

bool check(const Collective& c, std::vector<float>& data, std::vector<float>& scratch, size_t count, int rank, int n) {
  for (size_t i = 0; i < count; ++i) data[i] = input_value(rank, i);
  c.run(data.data(), count, scratch.data());
  bool ok = true;
  for (size_t i = 0; i < count && ok; ++i) {
    double expected = 0;
    for (int r = 0; r < n; ++r) expected += input_value(r, i);
    ok = data[i] == static_cast<float>(expected);
  }
  int mine = ok ? 1 : 0, all = 0;
  MPI_CHECK(MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
  return all == 1;
}

// Max over ranks of the mean time of cfg.iters calls, in seconds.
double timed_mean(const Collective& c, std::vector<float>& data, std::vector<float>& scratch, size_t count,
                  int iters) {
  MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
  const double t0 = MPI_Wtime();
  for (int i = 0; i < iters; ++i) c.run(data.data(), count, scratch.data());
  double mean = (MPI_Wtime() - t0) / iters, slowest = 0;
  MPI_CHECK(MPI_Allreduce(&mean, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
  return slowest;
}

// Checks each collective once, then times them in alternation for cfg.rounds rounds and keeps
// each one's best round: on a shared machine other jobs only ever slow a round down, and
// alternating gives both collectives the same chances.
std::vector<Result> measure(const std::vector<Collective>& collectives, std::vector<float>& data,
                            std::vector<float>& scratch, size_t count, const Config& cfg, int rank, int n) {
  std::vector<Result> results(collectives.size());
  std::vector<double> best(collectives.size(), 1e300);
  for (size_t a = 0; a < collectives.size(); ++a) results[a].ok = check(collectives[a], data, scratch, count, rank, n);
  std::fill(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(count), 0.0f);
  for (const Collective& c : collectives)
    for (int i = 0; i < cfg.warmup; ++i) c.run(data.data(), count, scratch.data());
  for (int round = 0; round < cfg.rounds; ++round)
    for (size_t a = 0; a < collectives.size(); ++a)
      best[a] = std::min(best[a], timed_mean(collectives[a], data, scratch, count, cfg.iters));
  const double bytes = static_cast<double>(count * sizeof(float));
  for (size_t a = 0; a < collectives.size(); ++a) {
    results[a].time_us = best[a] * 1e6;
    results[a].algbw = bytes / best[a] / 1e9;
    results[a].busbw = results[a].algbw * 2.0 * (n - 1) / n;
  }
  return results;
}

// GB/s of copying `bytes`, counted once (as nccl-tests counts a transfer); `all_ranks` copies
// on every rank at once, else on rank 0 while the others wait.
double memcpy_gbps(size_t bytes, bool all_ranks, int rank) {
  std::vector<char> src(bytes, 1), dst(bytes, 0);
  const bool active = all_ranks || rank == 0;
  const int reps = 10;
  if (active) std::memcpy(dst.data(), src.data(), bytes);  // fault the pages in
  MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
  const double t0 = MPI_Wtime();
  if (active)
    for (int i = 0; i < reps; ++i) {
      std::memcpy(dst.data(), src.data(), bytes);
      src[static_cast<size_t>(i)] = dst[bytes - 1 - static_cast<size_t>(i)];  // keep the copies live
    }
  const double t = MPI_Wtime() - t0;
  double gbps = active ? static_cast<double>(bytes) * reps / t / 1e9 : 1e300, slowest = 0;
  MPI_CHECK(MPI_Allreduce(&gbps, &slowest, 1, MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD));
  return slowest;
}

int run(const Config& cfg) {
  int rank = 0, n = 1;
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &n));
  char host[MPI_MAX_PROCESSOR_NAME];
  int host_len = 0;
  MPI_CHECK(MPI_Get_processor_name(host, &host_len));

  FILE* csv = nullptr;  // rank 0 only; opened first so a bad path fails before any timing
  if (rank == 0 && !cfg.csv.empty()) {
    csv = std::fopen(cfg.csv.c_str(), "w");
    if (!csv) throw cifar::Error("cannot open --csv file " + cfg.csv + " for writing");
    std::fprintf(csv,
                 "ranks,size_bytes,count,mpi_time_us,mpi_algbw_gbps,mpi_busbw_gbps,ring_time_us,ring_algbw_gbps,"
                 "ring_busbw_gbps,ring_over_mpi_busbw,check,ring_hosts\n");
  }

  const size_t max_count = std::max<size_t>(cfg.max_bytes / sizeof(float), 1);
  // The trainer's choice (make_allreduce): hierarchical when several hosts have several ranks each.
  const cifar::HostLayout hosts(MPI_COMM_WORLD);
  const cifar::RingLayout layout = cfg.flat_ring ? cifar::RingLayout::flat : cifar::RingLayout::hosts;
  std::vector<cifar::ChosenAllreduce> chosen;
  chosen.push_back(cifar::make_allreduce(cifar::AllreduceStrategy::mpi, cifar::WireDtype::fp32, layout, MPI_COMM_WORLD));
  chosen.push_back(cifar::make_allreduce(cifar::AllreduceStrategy::ring, cifar::WireDtype::fp32, layout, MPI_COMM_WORLD));
  const bool hierarchical = chosen[1].row->hierarchical;
  // Ranks in the ring that crosses the links: the hosts for the hierarchical ring, else all N
  // (the cost model's ring term, tools/cost_model.py).
  const int ring_hosts = hierarchical ? hosts.hosts() : n;
  size_t scratch_n = 1;
  std::vector<Collective> collectives;
  for (const cifar::ChosenAllreduce& c : chosen) {
    scratch_n = std::max(scratch_n, c.algo->scratch_floats(max_count));
    cifar::Allreduce* algo = c.algo.get();
    collectives.push_back({c.row->strategy == cifar::AllreduceStrategy::mpi ? "mpi" : "ring",
                           [algo](float* d, size_t count, float* s) {
                             algo->start(d, count, s);
                             algo->wait();
                           }});
  }
  std::vector<float> data(max_count), scratch(scratch_n);

  const size_t copy_bytes = std::max<size_t>(cfg.max_bytes, size_t{64} << 20);
  const double copy_one = memcpy_gbps(copy_bytes, false, rank), copy_all = memcpy_gbps(copy_bytes, true, rank);

  if (rank == 0) {
    std::printf("# allreduce_bench: N=%d ranks, host %.*s, float32 sum in place, iters %d x %d rounds, warmup %d\n", n,
                host_len, host, cfg.iters, cfg.rounds, cfg.warmup);
    if (hierarchical)
      std::printf("# ring: hierarchical, %d hosts x %d ranks (within each host, then across hosts)\n", hosts.hosts(),
                  hosts.ranks_per_host());
    else
      std::printf("# ring: flat, %d ranks in rank order (%d host(s))\n", n, hosts.hosts());
    std::printf("# memcpy %zu MiB: %.2f GB/s on 1 rank, %.2f GB/s per rank with all %d copying\n", copy_bytes >> 20,
                copy_one, copy_all, n);
    std::printf("# time = best of %d rounds of (max over ranks of the mean); algbw = bytes/time; busbw = algbw*2(N-1)/N (GB/s)\n#\n", cfg.rounds);
    std::printf("# %10s %10s  %12s %9s %9s  %13s %10s %10s  %8s  %5s\n", "size(B)", "count", "mpi_time(us)",
                "mpi_algbw", "mpi_busbw", "ring_time(us)", "ring_algbw", "ring_busbw", "ring/mpi", "check");
  }

  bool all_ok = true;
  for (size_t bytes = std::max<size_t>(cfg.min_bytes, sizeof(float)); bytes <= cfg.max_bytes; bytes *= 2) {
    const size_t count = bytes / sizeof(float);
    const std::vector<Result> results = measure(collectives, data, scratch, count, cfg, rank, n);
    const Result& mpi = results[0];
    const Result& ring = results[1];
    const bool ok = mpi.ok && ring.ok;
    all_ok = all_ok && ok;
    char ratio[32] = "-";  // busbw is 0 at N = 1: no ratio
    if (n > 1) std::snprintf(ratio, sizeof ratio, "%.3f", ring.busbw / mpi.busbw);
    const char* verdict = ok ? "ok" : (mpi.ok ? "RING" : "MPI");  // which one gave a wrong sum
    if (rank == 0) {
      std::printf("  %10zu %10zu  %12.1f %9.3f %9.3f  %13.1f %10.3f %10.3f  %8s  %5s\n", count * sizeof(float), count,
                  mpi.time_us, mpi.algbw, mpi.busbw, ring.time_us, ring.algbw, ring.busbw, ratio, verdict);
      std::fflush(stdout);
      if (csv)
        std::fprintf(csv, "%d,%zu,%zu,%.3f,%.4f,%.4f,%.3f,%.4f,%.4f,%s,%s,%d\n", n, count * sizeof(float), count,
                     mpi.time_us, mpi.algbw, mpi.busbw, ring.time_us, ring.algbw, ring.busbw, ratio, verdict,
                     ring_hosts);
    }
  }
  if (csv) std::fclose(csv);
  if (!all_ok && rank == 0) std::fprintf(stderr, "allreduce_bench: a sum was wrong (see the check column)\n");
  return all_ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);

  Config cfg;
  CLI::App app{"Bandwidth of MPI_Allreduce and of the ring all-reduce (float32 sum, in place)"};
  const size_t max_message = size_t{INT_MAX} * sizeof(float);  // MPI_Allreduce takes an int count
  app.add_option("--min-bytes", cfg.min_bytes, "smallest message, bytes")
      ->capture_default_str()
      ->check(CLI::Range(sizeof(float), max_message));
  app.add_option("--max-bytes", cfg.max_bytes, "largest message, bytes")
      ->capture_default_str()
      ->check(CLI::Range(sizeof(float), max_message));
  app.add_option("--iters", cfg.iters, "timed calls per round")
      ->capture_default_str()->check(CLI::Range(1, INT_MAX));
  app.add_option("--warmup", cfg.warmup, "untimed calls per size")
      ->capture_default_str()->check(CLI::Range(0, INT_MAX));
  app.add_option("--rounds", cfg.rounds, "timed rounds per size, alternating the collectives; the best is kept")
      ->capture_default_str()
      ->check(CLI::Range(1, INT_MAX));
  app.add_option("--csv", cfg.csv, "also write the rows to this CSV file (rank 0)");
  std::string layout = "hosts";
  app.add_option("--ring-layout", layout, "hosts: hierarchical ring across hosts (as cifar_mpi) | flat: one ring")
      ->capture_default_str()
      ->check(CLI::IsMember({"hosts", "flat"}));
  try {
    app.parse(argc, argv);
    if (cfg.min_bytes > cfg.max_bytes) throw CLI::ValidationError("--min-bytes", "is larger than --max-bytes");
    cfg.flat_ring = layout == "flat";
  } catch (const CLI::ParseError& e) {
    const int rc = rank == 0 ? app.exit(e) : e.get_exit_code();
    MPI_Finalize();
    return rc;
  }

  int rc = 0;
  try {
    rc = run(cfg);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "allreduce_bench rank %d: %s\n", rank, e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
  return rc;
}
