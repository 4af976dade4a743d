#include "cifar_mpi/model/layer.hpp"

namespace cifar {

LayoutBridge::LayoutBridge(const dnnl::memory& outer, const dnnl::memory::desc& wanted,
                           const dnnl::engine& eng, bool to_inner)
    : outer_(outer) {
  if (outer.get_desc() == wanted) {
    inner_ = outer;
  } else {
    inner_ = dnnl::memory(wanted, eng);
    const dnnl::memory& from = to_inner ? outer_ : inner_;
    const dnnl::memory& to = to_inner ? inner_ : outer_;
    reorder_ = BoundPrimitive(dnnl::reorder(from, to), {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}});
  }
}

void LayoutBridge::execute(dnnl::stream& s) {
  if (reorder_.bound()) reorder_.execute(s);
}

}  // namespace cifar
