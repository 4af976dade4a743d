#pragma once
// A oneDNN primitive with its arguments bound once, when its layer is built. The C++ API's
// primitive::execute takes a std::unordered_map and copies it into a new vector on every call;
// a step runs some hundred primitives, so this keeps the argument array made here and calls the
// C API with it: nothing allocates inside a step.
#include <dnnl.hpp>

#include <unordered_map>
#include <vector>

namespace cifar {

class BoundPrimitive {
 public:
  BoundPrimitive() = default;
  BoundPrimitive(dnnl::primitive primitive, const std::unordered_map<int, dnnl::memory>& args);
  void execute(dnnl::stream& s) const;
  bool bound() const { return static_cast<bool>(primitive_); }
  const dnnl::primitive& primitive() const { return primitive_; }

 private:
  dnnl::primitive primitive_;
  std::vector<dnnl::memory> memories_;  // keeps the memories the array points to alive
  std::vector<dnnl_exec_arg_t> args_;
};

}  // namespace cifar
