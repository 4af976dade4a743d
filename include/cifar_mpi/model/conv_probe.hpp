#pragma once
// Start-up choice of each convolution's algorithms: time what oneDNN offers on this CPU for the
// network's convolution shapes, in every pass, and keep the fastest. Pure model code (no MPI):
// in a distributed run one rank probes and the trainer broadcasts the choice, because different
// algorithms give different bits and the replicas must stay identical.
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include <dnnl.hpp>

#include "cifar_mpi/model/conv_algo.hpp"
#include "cifar_mpi/model/model_catalog.hpp"

namespace cifar {

// One forward algorithm tried, with each backward pass's time per algorithm under it (the
// forward algorithm fixes the layouts the backward passes read). Times in ms, the minimum of
// the timed executions; negative: oneDNN has no (non-reference) implementation.
struct ConvProbeRow {
  ConvAlgo forward = ConvAlgo::direct;
  double forward_ms = -1;
  double backward_data_ms[2] = {-1, -1};     // by ConvAlgo: direct, winograd ("first layer": 0)
  double backward_weights_ms[2] = {-1, -1};
};

struct ConvProbe {
  std::string layer;              // "conv1", "layer1.0.conv2", ...
  std::vector<ConvProbeRow> rows;  // one per forward algorithm with an implementation
  ConvPassAlgos chosen;
  double chosen_ms = 0, direct_ms = 0;  // the three passes: chosen, and all direct
  std::string summary() const;   // one log line: every time and the choice
};

// Times, for the network's convolutions at this batch and compute type, each forward algorithm
// and each backward algorithm under it: `warmup` untimed then `reps` timed executions each
// (about 0.5 s in all at batch 128 on 2 threads). The fastest total wins; direct on a tie
// within 2%, so that noise alone does not switch away from the default.
std::vector<ConvProbe> probe_conv_algorithms(const dnnl::engine& eng, std::span<const ConvShape> convs,
                                             size_t batch, ComputeDtype dtype, int warmup = 1, int reps = 3);

// The choice of a forced --conv-algo: every pass of every convolution.
NetworkOptions uniform_conv_options(ConvAlgo algo, ComputeDtype dtype, std::span<const ConvShape> convs);

}  // namespace cifar
