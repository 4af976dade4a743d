// allreduce_bench: nccl-tests-style bandwidth of MPI_Allreduce and of our all-reduces (float32
// sum, in place) over message sizes min..max bytes in x2 steps.
//
//   mpirun -np 2 allreduce_bench [--min-bytes 4096] [--max-bytes 67108864] [--iters 20]
//                                [--warmup 5] [--rounds 5] [--csv FILE] [--ring-layout hosts|flat]
//                                [--algorithms mpi,ring,rhd,ring_flat,rhd_flat] [--no-memcpy]
//                                [--fit-out FILE]
//
// "mpi", "ring" and "rhd" are the all-reduces cifar_mpi runs for --allreduce mpi, ring and rhd,
// made from the same table (allreduce.hpp, make_allreduce): the ring and rhd, with several hosts
// of several ranks each, are hierarchical (hierarchical_allreduce.hpp: the ring or rhd across
// hosts) unless --ring-layout flat; the header line says which. "ring_flat" and "rhd_flat" are
// the flat ones whatever --ring-layout, to time both layouts in one run. --algorithms picks which are timed (default mpi,ring); the CSV has
// <name>_time_us, <name>_algbw_gbps, <name>_busbw_gbps per algorithm, in the order given, and
// ring_over_mpi_busbw when both mpi and ring are timed (the default columns are those of before).
//
// --fit-out FILE (rank 0): per algorithm, alpha + beta * bytes fitted by least squares to the
// timed sizes up to 4 MiB (the trainer's buckets are smaller; larger sizes would swamp alpha), in
// the link model format cifar_mpi --link-model reads instead of its start-up probe
// (comm/link_model.hpp). Run it with the ranks and hosts of the training job.
//
// Time per op: each rank's mean over --iters timed calls, then the maximum over ranks; the
// collectives are timed in alternation for --rounds rounds and each keeps its best round.
// algbw = bytes / time; busbw = algbw * 2(N-1)/N, the per-link traffic of a bandwidth-optimal
// all-reduce, comparable across N (nccl-tests doc/PERFORMANCE.md). GB/s are 1e9 bytes/s.
// The timed loops reduce zeros (they stay zeros: no overflow, no denormals); correctness is
// checked once per size and algorithm outside them, exactly, on integer-valued inputs whose every
// partial sum is exact in float up to ~3000 ranks, against their sum as MPI_INT (MPI_Allreduce on
// integers: exact whatever its algorithm, and cheap when N is large, as under SimGrid).
// A large memcpy's bandwidth is printed for scale: on one machine every transfer is a copy.
// On one node, MPI_Allreduce from 32 MiB up may be dominated by page faults: it allocates
// temporaries per call, glibc serves blocks over 32 MiB with fresh mmap'd pages, and a fault can
// cost tens of microseconds in a VM. The ring reuses caller scratch and is immune; to time MPI
// without this, run with -x MALLOC_MMAP_THRESHOLD_=1073741824 -x MALLOC_TRIM_THRESHOLD_=1073741824.
#include <mpi.h>

// SimGrid's smpicxx force-includes smpi_helpers.h, whose exit(x) macro breaks CLI::App::exit;
// this program never calls exit() (tools/smpi/CMakeLists.txt builds it so).
#ifdef exit
#undef exit
#endif
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bench_cli.hpp"
#include "cifar_mpi/comm/allreduce.hpp"
#include "cifar_mpi/comm/host_layout.hpp"
#include "cifar_mpi/comm/link_model.hpp"
#include "cifar_mpi/comm/open_mpi_defaults.hpp"
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
  std::vector<std::string> algorithms = {"mpi", "ring"};
  std::string fit_out;  // link model file (rank 0)
  bool memcpy = true;  // --no-memcpy: skip the memcpy lines (64 MiB per rank: too much under SMPI)
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

// Integer-valued inputs that differ by rank and position, at most 4874: sums of up to 3400
// ranks stay below 2^24, exact in float in any order. Rank r, position i.
int input_value(int rank, size_t i) {
  return (rank % 97 + 1) * 8 + static_cast<int>((i * static_cast<size_t>(rank + 1) + 7) % 4099);
}

// `expected` (count ints): the exact sums, MPI_Allreduce over MPI_INT, made once per size.
bool check(const Collective& c, std::vector<float>& data, std::vector<float>& scratch, const std::vector<int>& expected,
           size_t count) {
  int rank = 0;
  MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  for (size_t i = 0; i < count; ++i) data[i] = static_cast<float>(input_value(rank, i));
  c.run(data.data(), count, scratch.data());
  bool ok = true;
  for (size_t i = 0; i < count && ok; ++i) ok = data[i] == static_cast<float>(expected[i]);
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
                            std::vector<float>& scratch, std::vector<int>& expected, size_t count, const Config& cfg,
                            int rank, int n) {
  std::vector<Result> results(collectives.size());
  std::vector<double> best(collectives.size(), 1e300);
  for (size_t i = 0; i < count; ++i) expected[i] = input_value(rank, i);
  MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, expected.data(), static_cast<int>(count), MPI_INT, MPI_SUM, MPI_COMM_WORLD));
  for (size_t a = 0; a < collectives.size(); ++a) results[a].ok = check(collectives[a], data, scratch, expected, count);
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

  const std::vector<std::string>& names = cfg.algorithms;
  const auto position = [&](const char* name) {
    return static_cast<int>(std::find(names.begin(), names.end(), name) - names.begin());
  };
  const int mpi_at = position("mpi"), ring_at = position("ring");
  const bool ratio_column = mpi_at < static_cast<int>(names.size()) && ring_at < static_cast<int>(names.size());

  FILE* csv = nullptr;  // rank 0 only; opened first so a bad path fails before any timing
  if (rank == 0 && !cfg.csv.empty()) {
    csv = std::fopen(cfg.csv.c_str(), "w");
    if (!csv) throw cifar::Error("cannot open --csv file " + cfg.csv + " for writing");
    std::string header = "ranks,size_bytes,count,";
    for (const std::string& a : names) header += a + "_time_us," + a + "_algbw_gbps," + a + "_busbw_gbps,";
    if (ratio_column) header += "ring_over_mpi_busbw,";
    std::fprintf(csv, "%scheck,ring_hosts\n", header.c_str());
  }

  const size_t max_count = std::max<size_t>(cfg.max_bytes / sizeof(float), 1);
  // The trainer's choice (make_allreduce): hierarchical when several hosts have several ranks each.
  const cifar::HostLayout hosts(MPI_COMM_WORLD);
  const cifar::RingLayout layout = cfg.flat_ring ? cifar::RingLayout::flat : cifar::RingLayout::hosts;
  std::vector<cifar::ChosenAllreduce> chosen;
  std::vector<cifar::AllreduceStrategy> strategies;
  for (const std::string& a : names) {
    const bool flat = a.ends_with("_flat");
    const cifar::AllreduceStrategy s = a == "mpi"                       ? cifar::AllreduceStrategy::mpi
                                       : a == "ring" || a == "ring_flat" ? cifar::AllreduceStrategy::ring
                                                                         : cifar::AllreduceStrategy::rhd;
    strategies.push_back(s);
    chosen.push_back(
        cifar::make_allreduce(s, cifar::WireDtype::fp32, flat ? cifar::RingLayout::flat : layout, MPI_COMM_WORLD));
  }
  std::vector<std::vector<double>> fit_bytes(names.size()), fit_seconds(names.size());
  // The ring's layout, as make_allreduce picks it (hierarchical with several hosts of several ranks).
  const bool hierarchical = !cfg.flat_ring && hosts.hierarchical();
  // Ranks in the ring that crosses the links: the hosts for the hierarchical ring, else all N
  // (the cost model's ring term, tools/cost_model.py).
  const int ring_hosts = hierarchical ? hosts.hosts() : n;
  size_t scratch_n = 1;
  std::vector<Collective> collectives;
  for (size_t a = 0; a < chosen.size(); ++a) {
    scratch_n = std::max(scratch_n, chosen[a].algo->scratch_floats(max_count));
    cifar::Allreduce* algo = chosen[a].algo.get();
    collectives.push_back({names[a].c_str(), [algo](float* d, size_t count, float* s) {
                             algo->start(d, count, s);
                             algo->wait();
                           }});
  }
  std::vector<float> data(max_count), scratch(scratch_n);
  std::vector<int> expected(max_count);

  const size_t copy_bytes = std::max<size_t>(cfg.max_bytes, size_t{64} << 20);
  double copy_one = 0, copy_all = 0;
  if (cfg.memcpy) {
    copy_one = memcpy_gbps(copy_bytes, false, rank);
    copy_all = memcpy_gbps(copy_bytes, true, rank);
  }

  if (rank == 0) {
    std::printf("# allreduce_bench: N=%d ranks, host %.*s, float32 sum in place, iters %d x %d rounds, warmup %d\n", n,
                host_len, host, cfg.iters, cfg.rounds, cfg.warmup);
    if (hierarchical)
      std::printf("# ring, rhd: hierarchical, %d hosts x %d ranks (within each host, then across hosts)\n", hosts.hosts(),
                  hosts.ranks_per_host());
    else
      std::printf("# ring, rhd: flat, %d ranks in rank order (%d host(s))\n", n, hosts.hosts());
    if (cfg.memcpy)
      std::printf("# memcpy %zu MiB: %.2f GB/s on 1 rank, %.2f GB/s per rank with all %d copying\n", copy_bytes >> 20,
                  copy_one, copy_all, n);
    std::printf("# time = best of %d rounds of (max over ranks of the mean); algbw = bytes/time; busbw = algbw*2(N-1)/N (GB/s)\n#\n", cfg.rounds);
    std::printf("# %10s %10s", "size(B)", "count");
    for (const std::string& a : names)
      std::printf("  %13s %10s %10s", (a + "_time(us)").c_str(), (a + "_algbw").c_str(), (a + "_busbw").c_str());
    std::printf("%s  %5s\n", ratio_column ? "  ring/mpi" : "", "check");
  }

  bool all_ok = true;
  for (size_t bytes = std::max<size_t>(cfg.min_bytes, sizeof(float)); bytes <= cfg.max_bytes; bytes *= 2) {
    const size_t count = bytes / sizeof(float);
    const std::vector<Result> results = measure(collectives, data, scratch, expected, count, cfg, rank, n);
    std::string verdict = "ok";  // else the first algorithm that gave a wrong sum, in capitals
    for (size_t a = 0; a < results.size() && verdict == "ok"; ++a)
      if (!results[a].ok) {
        verdict = names[a];
        for (char& ch : verdict) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      }
    all_ok = all_ok && verdict == "ok";
    if (bytes <= (size_t{4} << 20))
      for (size_t a = 0; a < results.size(); ++a)
        fit_bytes[a].push_back(static_cast<double>(count * sizeof(float))), fit_seconds[a].push_back(results[a].time_us * 1e-6);
    char ratio[32] = "-";  // busbw is 0 at N = 1: no ratio
    if (ratio_column && n > 1)
      std::snprintf(ratio, sizeof ratio, "%.3f",
                    results[static_cast<size_t>(ring_at)].busbw / results[static_cast<size_t>(mpi_at)].busbw);
    if (rank == 0) {
      std::printf("  %10zu %10zu", count * sizeof(float), count);
      for (const Result& r : results) std::printf("  %13.1f %10.3f %10.3f", r.time_us, r.algbw, r.busbw);
      if (ratio_column) std::printf("  %8s", ratio);
      std::printf("  %5s\n", verdict.c_str());
      std::fflush(stdout);
      if (csv) {
        std::fprintf(csv, "%d,%zu,%zu,", n, count * sizeof(float), count);
        for (const Result& r : results) std::fprintf(csv, "%.3f,%.4f,%.4f,", r.time_us, r.algbw, r.busbw);
        if (ratio_column) std::fprintf(csv, "%s,", ratio);
        std::fprintf(csv, "%s,%d\n", verdict.c_str(), ring_hosts);
      }
    }
  }
  if (csv) std::fclose(csv);
  if (rank == 0 && !cfg.fit_out.empty() && !fit_bytes.empty() && !fit_bytes[0].empty()) {
    cifar::LinkModel m;
    for (size_t a = 0; a < names.size(); ++a)
      m.algorithms.push_back({strategies[a], chosen[a].row->name, cifar::fit_alpha_beta(fit_bytes[a], fit_seconds[a])});
    FILE* f = std::fopen(cfg.fit_out.c_str(), "w");
    if (!f) throw cifar::Error("cannot open --fit-out file " + cfg.fit_out + " for writing");
    std::fputs(cifar::link_model_text(m).c_str(), f);
    std::fclose(f);
    std::printf("# fit (sizes <= 4 MiB) -> %s: %s\n", cfg.fit_out.c_str(), m.summary().c_str());
  }
  if (!all_ok && rank == 0) std::fprintf(stderr, "allreduce_bench: a sum was wrong (see the check column)\n");
  return all_ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  cifar::apply_open_mpi_defaults();  // measure the transport cifar_mpi runs on (its --link-model fits)
  MPI_Init(&argc, &argv);
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);

  Config cfg;
  CLI::App app{"Bandwidth of MPI_Allreduce and of our all-reduces (float32 sum, in place)"};
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
  app.add_option("--fit-out", cfg.fit_out,
                 "write alpha + beta*bytes per algorithm (sizes <= 4 MiB) for cifar_mpi --link-model (rank 0)");
  std::string layout = "hosts";
  app.add_option("--ring-layout", layout,
                 "hosts: ring and rhd hierarchical across hosts (as cifar_mpi) | flat: one ring, one rhd")
      ->capture_default_str()
      ->check(CLI::IsMember({"hosts", "flat"}));
  app.add_option("--algorithms", cfg.algorithms, "all-reduces to time, comma-separated, in CSV column order")
      ->delimiter(',')
      ->capture_default_str()
      ->check(CLI::IsMember({"mpi", "ring", "rhd", "ring_flat", "rhd_flat"}));
  bool no_memcpy = false;
  app.add_flag("--no-memcpy", no_memcpy, "skip the memcpy bandwidth lines (64 MiB a rank: too much under SimGrid)");
  try {
    app.parse(argc, argv);
    if (cfg.min_bytes > cfg.max_bytes) throw CLI::ValidationError("--min-bytes", "is larger than --max-bytes");
    cfg.flat_ring = layout == "flat";
    cfg.memcpy = !no_memcpy;
    for (size_t a = 0; a < cfg.algorithms.size(); ++a)
      for (size_t b = 0; b < a; ++b)
        if (cfg.algorithms[a] == cfg.algorithms[b]) throw CLI::ValidationError("--algorithms", "names " + cfg.algorithms[a] + " twice");
  } catch (const CLI::ParseError& e) {
    const int rc = bench_cli_exit(app, e, "allreduce_bench", rank == 0);
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
