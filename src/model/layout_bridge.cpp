#include "cifar_mpi/model/layer.hpp"

namespace cifar {

LayoutBridge::LayoutBridge(const dnnl::memory& outer, const dnnl::memory::desc& wanted,
                           const dnnl::engine& eng, bool to_inner)
    : outer_(outer), to_inner_(to_inner) {
  if (outer.get_desc() == wanted) {
    inner_ = outer;
  } else {
    inner_ = dnnl::memory(wanted, eng);
    reorder_ = to_inner ? dnnl::reorder(outer_, inner_) : dnnl::reorder(inner_, outer_);
  }
}

void LayoutBridge::execute(dnnl::stream& s) {
  if (!reorder_) return;
  if (to_inner_)
    reorder_->execute(s, outer_, inner_);
  else
    reorder_->execute(s, inner_, outer_);
}

}  // namespace cifar
