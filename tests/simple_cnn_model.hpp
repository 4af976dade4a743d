#pragma once
// The reference CNN as the tests build it: the model catalog's "simplecnn" under the names the
// tests have always used (a Network of that model, its tensors, its initialisation).
#include <cstdint>

#include "cifar_mpi/model/model_catalog.hpp"
#include "cifar_mpi/model/network.hpp"

namespace cifar {

inline const ModelSpec& simple_cnn_model_spec() { return find_model("simplecnn"); }
inline void register_simple_cnn(ParamArena& arena) { simple_cnn_model_spec().register_tensors(arena); }
inline void init_pytorch_default(ParamArena& arena, uint64_t seed) { simple_cnn_model_spec().initialize(arena, seed); }

class SimpleCnn : public Network {
 public:
  SimpleCnn(const dnnl::engine& eng, ParamArena& arena, size_t batch, const NetworkOptions& options = {})
      : Network(simple_cnn_model_spec(), eng, arena, batch, options) {}
};

}  // namespace cifar
