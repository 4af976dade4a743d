#include "cifar_mpi/model/conv_algo.hpp"

#include <dnnl.hpp>

#include <utility>

namespace cifar {

const char* conv_algo_name(ConvAlgo a) { return a == ConvAlgo::winograd ? "winograd" : "direct"; }

namespace {
// dnnl_cpu_isa_t values are bit sets, each ISA's a superset of the one it extends (avx512_core_amx
// 0x3e7 contains avx512_core_bf16 0xe7; avx2_vnni 0x407 does not contain it).
bool isa_includes(dnnl::cpu_isa isa, dnnl::cpu_isa base) {
  const auto b = static_cast<unsigned>(base);
  return (static_cast<unsigned>(isa) & b) == b;
}
}  // namespace

bool cpu_has_native_bf16() { return isa_includes(dnnl::get_effective_cpu_isa(), dnnl::cpu_isa::avx512_core_bf16); }

std::string effective_cpu_isa_name() {
  using dnnl::cpu_isa;
  constexpr std::pair<cpu_isa, const char*> kNames[] = {  // the widest first
      {cpu_isa::avx512_core_amx, "avx512_core_amx"}, {cpu_isa::avx512_core_bf16, "avx512_core_bf16"},
      {cpu_isa::avx512_core_vnni, "avx512_core_vnni"}, {cpu_isa::avx512_core, "avx512_core"},
      {cpu_isa::avx512_mic_4ops, "avx512_mic_4ops"}, {cpu_isa::avx512_mic, "avx512_mic"},
      {cpu_isa::avx2_vnni, "avx2_vnni"}, {cpu_isa::avx2, "avx2"}, {cpu_isa::avx, "avx"}, {cpu_isa::sse41, "sse41"}};
  const cpu_isa isa = dnnl::get_effective_cpu_isa();
  for (const auto& [base, name] : kNames)
    if (isa_includes(isa, base)) return name;
  return "none";
}

}  // namespace cifar
