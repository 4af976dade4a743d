#include "cifar_mpi/model/param_arena.hpp"

#include <functional>
#include <numeric>

#include "cifar_mpi/util/error.hpp"

namespace cifar {

size_t ParamArena::add(std::string name, std::vector<size_t> shape) {
  if (finalized_) throw Error("ParamArena::add(" + name + ") after finalize()");
  TensorSpec s;
  s.name = std::move(name);
  s.count = std::accumulate(shape.begin(), shape.end(), size_t{1}, std::multiplies<>());
  s.shape = std::move(shape);
  specs_.push_back(std::move(s));
  return specs_.size() - 1;
}

size_t ParamArena::add_buffer(std::string name, std::vector<size_t> shape, float initial) {
  if (finalized_) throw Error("ParamArena::add_buffer(" + name + ") after finalize()");
  TensorSpec s;
  s.name = std::move(name);
  s.count = std::accumulate(shape.begin(), shape.end(), size_t{1}, std::multiplies<>());
  s.shape = std::move(shape);
  s.offset = buffers_.size();
  buffers_.insert(buffers_.end(), s.count, initial);
  buffer_specs_.push_back(std::move(s));
  return buffer_specs_.size() - 1;
}

void ParamArena::finalize() {
  size_t offset = 0;
  for (auto it = specs_.rbegin(); it != specs_.rend(); ++it) {  // backward order
    it->offset = offset;
    offset += it->count;
  }
  params_.assign(offset, 0.0f);
  grads_.assign(offset, 0.0f);
  finalized_ = true;
}

const TensorSpec& ParamArena::spec(const std::string& name) const {
  for (const auto& s : specs_)
    if (s.name == name) return s;
  throw Error("no parameter tensor named '" + name + "'");
}

size_t ParamArena::index(const std::string& name) const {
  for (size_t i = 0; i < specs_.size(); ++i)
    if (specs_[i].name == name) return i;
  throw Error("no parameter tensor named '" + name + "'");
}

float* ParamArena::buffer(const std::string& name) {
  for (const auto& s : buffer_specs_)
    if (s.name == name) return buffers_.data() + s.offset;
  throw Error("no buffer named '" + name + "'");
}

}  // namespace cifar
