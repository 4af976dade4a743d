#include "cifar_mpi/model/bound_primitive.hpp"

#include <string>

#include "cifar_mpi/util/error.hpp"

namespace cifar {

BoundPrimitive::BoundPrimitive(dnnl::primitive primitive, const std::unordered_map<int, dnnl::memory>& args)
    : primitive_(std::move(primitive)) {
  for (const auto& [arg, mem] : args) {
    if (!mem) continue;  // an absent optional argument (a convolution without bias)
    memories_.push_back(mem);
    args_.push_back({arg, mem.get()});
  }
}

void BoundPrimitive::execute(dnnl::stream& s) const {
  const dnnl_status_t status =
      dnnl_primitive_execute(primitive_.get(), s.get(), static_cast<int>(args_.size()), args_.data());
  if (status == dnnl_success) return;
  // Name the primitive (oneDNN's implementation string): the status alone says little.
  const_dnnl_primitive_desc_t pd = nullptr;
  const char* info = nullptr;
  if (dnnl_primitive_get_primitive_desc(primitive_.get(), &pd) != dnnl_success ||
      dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &info) != dnnl_success || !info)
    info = "?";
  throw Error(std::string("oneDNN could not execute ") + info + " (status " + std::to_string(status) + ")");
}

}  // namespace cifar
