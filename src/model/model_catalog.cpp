#include "cifar_mpi/model/model_catalog.hpp"

#include <array>

#include "cifar_mpi/util/error.hpp"

namespace cifar {

// One per model file (src/model/<name>.cpp).
const ModelSpec& simple_cnn_model();
const ModelSpec& resnet20_model();

std::span<const ModelSpec* const> all_models() {
  static const std::array<const ModelSpec*, 2> models{&simple_cnn_model(), &resnet20_model()};
  return models;
}

const ModelSpec& find_model(std::string_view name) {
  for (const ModelSpec* m : all_models())
    if (name == m->name) return *m;
  throw Error("unknown model '" + std::string(name) + "' (known: " + model_names(", ") + ")");
}

std::string model_names(const char* separator) {
  std::string out;
  for (const ModelSpec* m : all_models()) out += (out.empty() ? "" : separator) + std::string(m->name);
  return out;
}

size_t LayerContext::index(const std::string& name) const { return arena.index(name); }

float* LayerContext::buffer(const std::string& name) const { return arena.buffer(name); }

}  // namespace cifar
