#pragma once
// All parameters in one allocation and all gradients in another with the same layout, so that
// the optimizer is one flat loop, the all-reduce works on (offset, length) views, and a bucket
// is a contiguous range. Tensors are registered in forward order with PyTorch's state_dict names
// and shapes, but laid out in *backward* order (fc2.bias first, conv1.weight last): backward
// produces gradients from the end of the network to its start, so a bucket that is complete
// early is the front of the buffer.
// Buffers (PyTorch's named_buffers: BatchNorm's running mean and variance) live apart, in a third
// allocation: they have no gradient, the optimizer and the all-reduce never see them, and the
// weights files and checkpoints carry them under their state_dict names.
#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace cifar {

struct TensorSpec {
  std::string name;           // PyTorch state_dict key, e.g. "conv1.weight"
  std::vector<size_t> shape;  // PyTorch shape, e.g. {32, 3, 3, 3}
  size_t offset = 0;          // in floats, into params() and grads()
  size_t count = 0;
};

class ParamArena {
 public:
  // Registers a tensor (forward order); returns its index. Only before finalize().
  size_t add(std::string name, std::vector<size_t> shape);
  // Registers a buffer (forward order, filled with `initial`); returns its index among buffers.
  size_t add_buffer(std::string name, std::vector<size_t> shape, float initial);
  // Lays the tensors out in backward order and allocates zeroed params and grads.
  void finalize();

  float* param(size_t i) { return params_.data() + specs_.at(i).offset; }
  float* grad(size_t i) { return grads_.data() + specs_.at(i).offset; }
  std::span<float> params() { return params_; }
  std::span<float> grads() { return grads_; }
  std::span<const float> params() const { return params_; }
  std::span<const float> grads() const { return grads_; }
  const std::vector<TensorSpec>& specs() const { return specs_; }
  size_t total_count() const { return params_.size(); }
  const TensorSpec& spec(const std::string& name) const;
  size_t index(const std::string& name) const;  // of a parameter tensor; Error if none

  // Buffers: offsets into buffers(), in registration order. Empty for a model without any.
  const std::vector<TensorSpec>& buffer_specs() const { return buffer_specs_; }
  std::span<float> buffers() { return buffers_; }
  std::span<const float> buffers() const { return buffers_; }
  float* buffer(const std::string& name);  // Error if none

 private:
  std::vector<TensorSpec> specs_;  // forward order
  std::vector<float> params_;
  std::vector<float> grads_;
  std::vector<TensorSpec> buffer_specs_;
  std::vector<float> buffers_;
  bool finalized_ = false;
};

}  // namespace cifar
