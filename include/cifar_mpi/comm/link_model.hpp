#pragma once
// The link as --allreduce auto and --bucket-mb auto see it: for each candidate all-reduce, the
// time of one reduction of `bytes` predicted as alpha + beta * bytes (the alpha-beta model of
// Hockney; tools/cifar_tools/cost_model fits the same form offline). `bytes` are the bucket's
// float32 bytes (count x 4) whatever the wire type: the probe runs with the run's wire type, so a
// 16-bit wire shows up as a smaller beta.
//
// Fitted at start-up by probe_link_model (a few sizes, the minimum over repeats of the slowest
// rank's time, least squares), or read from a file allreduce_bench --fit-out wrote. Every rank
// holds the same numbers (the timings are reduced with MPI_MAX before the fit, and rank 0's fit is
// broadcast), so every rank makes the same choices: the summation order, and so the bits, depend
// on them.
#include <mpi.h>

#include <cstddef>
#include <span>
#include <istream>
#include <string>
#include <vector>

#include "cifar_mpi/comm/allreduce_strategy.hpp"
#include "cifar_mpi/comm/wire_dtype.hpp"

namespace cifar {

struct LinkCost {
  double alpha = 0;  // s per reduction
  double beta = 0;   // s per float32 byte of the bucket
  double time(size_t bytes) const { return alpha + beta * static_cast<double>(bytes); }
};

struct AlgorithmCost {
  AllreduceStrategy strategy = AllreduceStrategy::mpi;
  std::string name;  // the table row that ran ("ring", "hierarchical ring", ...)
  LinkCost cost;
};

struct LinkModel {
  std::vector<AlgorithmCost> algorithms;  // the candidates, in table order
  // Index of the candidate with the least predicted time for `bytes` (the first on a tie).
  size_t best(size_t bytes) const;
  double time(size_t bytes) const { return algorithms.at(best(bytes)).cost.time(bytes); }
  // "ring 31.2 us + 8.41 ns/B, rhd ..." for the start-up line.
  std::string summary() const;
};

// Least-squares fit of seconds = alpha + beta * bytes; alpha and beta clamped at >= 0 (a negative
// intercept from noise would make small buckets look free). Needs >= 1 point; one point or one
// distinct size gives beta 0 and alpha = the mean time.
LinkCost fit_alpha_beta(std::span<const double> bytes, std::span<const double> seconds);

// Times each candidate's all-reduce (made from the table as make_allreduce would for this run) at
// a few sizes (4 KiB and 512 KiB always, 64 KiB and 1 MiB while the candidate's share of a 0.5 s
// budget lasts; each the minimum of 3 after a warm-up): collective over `comm`, the same on every
// rank. Over budget only where two sizes alone take longer (a link under ~100 Mbit/s).
LinkModel probe_link_model(std::span<const AllreduceStrategy> candidates, WireDtype wire, RingLayout layout,
                           MPI_Comm comm, int host_color = -1);

// The non-naive strategies of the table, in table order (what --allreduce auto chooses among).
std::vector<AllreduceStrategy> auto_candidates();

// A link model as text (one line per algorithm: "<strategy> <alpha s> <beta s/B> <row name>"),
// what allreduce_bench --fit-out writes and cifar_mpi --link-model reads. read throws cifar::Error
// naming the file and line; parse reads the same text from a stream (`source` names it in errors).
std::string link_model_text(const LinkModel& m);
LinkModel read_link_model(const std::string& path);
LinkModel parse_link_model(std::istream& in, const std::string& source);

}  // namespace cifar
