#pragma once
// How the network's convolutions compute: oneDNN's algorithm for each of a convolution's three
// passes, and the data type of the convolutions' arithmetic. Weights, their gradients (all-reduce)
// and the update stay float32 whatever is chosen here.
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>

namespace cifar {

enum class ConvAlgo { direct, winograd };
// What --conv-algo asks for: auto times the algorithms at start-up (probe_conv_algorithms).
enum class ConvAlgoRequest { auto_, direct, winograd };
enum class ComputeDtype { fp32, bf16 };

const char* conv_algo_name(ConvAlgo a);  // "direct" | "winograd"
inline std::string to_string(ConvAlgoRequest r) {
  return r == ConvAlgoRequest::auto_ ? "auto" : r == ConvAlgoRequest::winograd ? "winograd" : "direct";
}
inline std::string to_string(ComputeDtype d) { return d == ComputeDtype::bf16 ? "bf16" : "fp32"; }

// One algorithm per pass. oneDNN accepts a backward pass of another algorithm than the forward
// one (the forward pd is only a hint), but the forward's choice fixes the activation layouts
// that the backward passes must read, so the three are chosen together.
struct ConvPassAlgos {
  ConvAlgo forward = ConvAlgo::direct, backward_data = ConvAlgo::direct, backward_weights = ConvAlgo::direct;
  bool operator==(const ConvPassAlgos&) const = default;
};

// Everything Network needs to know beyond shapes: per convolution layer (by name: "conv1",
// "conv2"), its algorithms (absent: direct in every pass), and the compute data type.
struct NetworkOptions {
  std::map<std::string, ConvPassAlgos> conv;
  ComputeDtype dtype = ComputeDtype::fp32;
  // ReLU as a post-op of the layer before it (conv1, conv2, fc1); off only to measure the gain.
  bool fuse_relu = true;
  // Max pooling by the hand-written kernel (layers/max_pool_kernel.hpp) where the layout allows it,
  // or always by oneDNN's pooling; the latter only to measure the gain (the same bits).
  bool pool_kernel = true;
  // --sync-bn: sums numbers across the replicas, in place (collective). When set, BatchNorm
  // normalises over the global batch rather than each rank's share (layers/batch_norm.hpp).
  std::function<void(std::span<double>)> sum_across_replicas;
};

// True when oneDNN's effective ISA (dnnl::get_effective_cpu_isa(): the CPU's, lowered by
// ONEDNN_MAX_CPU_ISA) has bf16 arithmetic: avx512_bf16 or AMX. Not "a bf16 convolution is not
// ref:": on plain avx512_core oneDNN 2.6 emulates bf16 in its jit kernels, slower than fp32.
bool cpu_has_native_bf16();
// That effective ISA's name, as oneDNN spells it: "avx512_core_bf16", "avx2", ...
std::string effective_cpu_isa_name();

}  // namespace cifar
