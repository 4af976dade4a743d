#include "cifar_mpi/model/conv_algo.hpp"

#include <dnnl.hpp>

namespace cifar {

const char* conv_algo_name(ConvAlgo a) { return a == ConvAlgo::winograd ? "winograd" : "direct"; }

bool cpu_has_native_bf16() {
  // A small bf16 convolution of the network's kind: oneDNN falls back to its reference loop
  // ("ref:") where the CPU has neither avx512_bf16 nor AMX.
  using dnnl::memory;
  const dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  const memory::dims src{8, 32, 15, 15}, weights{64, 32, 3, 3}, dst{8, 64, 13, 13}, one{1, 1}, zero{0, 0};
  auto any = [](const memory::dims& d) { return memory::desc(d, memory::data_type::bf16, memory::format_tag::any); };
  try {
    const dnnl::convolution_forward::primitive_desc pd(
        {dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, any(src), any(weights), any(dst), one,
         zero, zero},
        eng);
    return std::string(pd.impl_info_str()).rfind("ref:", 0) != 0;
  } catch (const dnnl::error&) {
    return false;
  }
}

}  // namespace cifar
