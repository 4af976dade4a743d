// The model catalog as the option parser sees it (its names and descriptions), for fuzz_config:
// the real catalog (src/model/model_catalog.cpp) brings every model's layers and oneDNN with it,
// which this target does not link. The parser only needs names to accept; a model missing here
// would only be refused by the fuzzer's parse.
#include <array>

#include "cifar_mpi/model/model_catalog.hpp"

namespace cifar {

std::span<const ModelSpec* const> all_models() {
  static const ModelSpec simplecnn{"simplecnn", "the reference CNN", nullptr, nullptr, nullptr, {}};
  static const ModelSpec resnet20{"resnet20", "ResNet-20", nullptr, nullptr, nullptr, {}};
  static const std::array<const ModelSpec*, 2> models{&simplecnn, &resnet20};
  return models;
}

std::string model_names(const char* separator) {
  std::string out;
  for (const ModelSpec* m : all_models()) out += (out.empty() ? "" : separator) + std::string(m->name);
  return out;
}

}  // namespace cifar
