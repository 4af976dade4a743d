#!/usr/bin/env bash
# allreduce_bench on a simulated platform: SimGrid's SMPI runs all N ranks in one process and
# times every message on the platform's links (cifar_tools.smpi_platform writes platforms).
#
#   tools/smpi_allreduce.sh --np N --platform P.xml [--out CSV] [--alpha-beta] -- [allreduce_bench options]
#
#   --np N          ranks (the platform must have at least N cores; ranks fill hosts in order)
#   --platform P    SimGrid platform XML; the hostfile is generated from it
#   --out CSV       the bench's --csv (rank 0's rows)
#   --alpha-beta    plain alpha-beta links: SMPI's per-message-size latency and bandwidth factors
#                   (smpi/lat-factor, smpi/bw-factor, calibrated on a real TCP cluster) set to 1
#   after --         passed to allreduce_bench; --iters 1 --rounds 1 --warmup 0 --no-memcpy
#                   unless given there (simulated time is deterministic: one timed call says it all)
#
# Settings: computation is not simulated (smpi/simulate-computation:no: the time is the
# network's alone), MPI_Allreduce picks algorithms as Open MPI does (smpi/coll-selector:ompi),
# and the globals of the program are privatized per rank (smpi/privatization:dlopen, SMPI's
# default on Linux, said explicitly). Builds $CIFAR_SMPI_BUILD (default build-smpi/) with
# tools/smpi/CMakeLists.txt if its allreduce_bench is missing.
# Site assumptions: SimGrid 3.32 (libsimgrid-dev: smpicxx, smpirun), python3.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
SMPI_BUILD="${CIFAR_SMPI_BUILD:-$CIFAR_ROOT/build-smpi}"

np="" platform="" out="" alpha_beta=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --np) np="$2"; shift 2 ;;
    --platform) platform="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --alpha-beta) alpha_beta=1; shift ;;
    --) shift; break ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "smpi_allreduce.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$np" && -n "$platform" ]] || { echo "smpi_allreduce.sh: --np and --platform are required" >&2; exit 2; }
[[ -f "$platform" ]] || { echo "smpi_allreduce.sh: no platform file $platform" >&2; exit 2; }
command -v smpirun >/dev/null || { echo "smpi_allreduce.sh: smpirun not found (apt-get install libsimgrid-dev)" >&2; exit 2; }

if [[ ! -x "$SMPI_BUILD/allreduce_bench" ]]; then
  cmake -S "$CIFAR_ROOT/tools/smpi" -B "$SMPI_BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$SMPI_BUILD" -j "$(nproc)" >/dev/null
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cifar_tools smpi_platform hostfile "$platform" --np "$np" >"$tmp/hostfile"

cfg=(--cfg=smpi/simulate-computation:no --cfg=smpi/coll-selector:ompi --cfg=smpi/privatization:dlopen
     --log=root.thresh:warning)
if [[ $alpha_beta -eq 1 ]]; then
  cfg+=(--cfg=smpi/lat-factor:0:1 --cfg=smpi/bw-factor:0:1)
fi
bench_args=()
has() { local k; for k in "${user_args[@]}"; do [[ "$k" == "$1" || "$k" == "$1="* ]] && return 0; done; return 1; }
user_args=("$@")
has --iters || bench_args+=(--iters 1)
has --rounds || bench_args+=(--rounds 1)
has --warmup || bench_args+=(--warmup 0)
has --no-memcpy || bench_args+=(--no-memcpy)
[[ -n "$out" ]] && bench_args+=(--csv "$out")
smpirun -np "$np" -platform "$platform" -hostfile "$tmp/hostfile" "${cfg[@]}" \
  "$SMPI_BUILD/allreduce_bench" "${bench_args[@]}" "$@"
