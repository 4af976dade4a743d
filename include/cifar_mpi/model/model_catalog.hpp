#pragma once
// The models the program can train, by name (--model): a model is its tensors (registered in
// forward order with PyTorch's state_dict names), its initialisation, its layers, and its
// convolutions' shapes (what --conv-algo auto times). Everything above src/model/ works on a
// Network built from one of these and never asks which it is. Adding a model is one file
// src/model/<name>.cpp defining a ModelSpec, and one row of the table in model_catalog.cpp.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <dnnl.hpp>

#include "cifar_mpi/model/conv_algo.hpp"
#include "cifar_mpi/model/layer.hpp"
#include "cifar_mpi/model/param_arena.hpp"

namespace cifar {

// A convolution as --conv-algo auto times it: src (B, in_channels, side, side), out channels,
// kernel, stride, padding, bias or not; the first layer computes no data gradient.
struct ConvShape {
  const char* name;
  int in_channels, side, out_channels, kernel, stride = 1, pad = 0;
  bool bias = true, first = false;
};

// What a model's layers are built from: the engine, the arena (tensors by name), the options.
struct LayerContext {
  const dnnl::engine& eng;
  ParamArena& arena;
  const NetworkOptions& options;
  // The arena's tensor of this name: its parameters and its gradients (throws naming it).
  float* param(const std::string& name) const { return arena.param(index(name)); }
  float* grad(const std::string& name) const { return arena.grad(index(name)); }
  float* buffer(const std::string& name) const;  // a running statistic (ParamArena::add_buffer)
  size_t index(const std::string& name) const;
};

using LayerList = std::vector<std::unique_ptr<Layer>>;

struct ModelSpec {
  const char* name;         // what --model takes
  const char* description;  // one line for --help and the log
  // Registers the tensors (forward order) and buffers, then finalizes the arena.
  void (*register_tensors)(ParamArena& arena);
  // The model's initialisation, deterministic for a seed (our generator, not torch's draws).
  void (*initialize)(ParamArena& arena, uint64_t seed);
  // Appends the layers in forward order, the first reading `input` (B, 3, 32, 32) NCHW; the
  // last layer's dst is the logits (B, 10).
  void (*build)(const LayerContext& ctx, dnnl::memory& input, LayerList& layers);
  std::span<const ConvShape> convs;
};

std::span<const ModelSpec* const> all_models();
// The model called `name`; an Error listing the known names otherwise.
const ModelSpec& find_model(std::string_view name);
std::string model_names(const char* separator = "|");  // "simplecnn|resnet20"

}  // namespace cifar
