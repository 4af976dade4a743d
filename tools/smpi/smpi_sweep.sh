#!/usr/bin/env bash
# The all-reduces from 2 to 1024 ranks on a simulated flat cluster (SimGrid SMPI,
# tools/smpi_allreduce.sh), beside the alpha-beta predictions:
#   ring  2(N-1) alpha + 2(N-1)/N S beta        rhd  2 log2(N) alpha + 2(N-1)/N S beta
# (alpha = host-to-host latency, beta = 1 / link rate, S = bytes; mpi = MPI_Allreduce as Open MPI
# picks it, no single formula).
#
#   tools/smpi/smpi_sweep.sh [--out CSV] [--max-np 1024] [--sizes "1048576 1262888"]
#                       [--algorithms "mpi rhd ring"] [--ring-max-np 1024] [--alpha-us 27] [--gbps 10]
#                       [--alpha-beta]
#
#   --out CSV          one row per (N, size, algorithm) (default results/smpi-sweep.csv):
#                      factors,ranks,size_bytes,algorithm,time_us,busbw_gbps,check,model_us,sim_over_model
#   --ring-max-np N    skip the ring above N ranks (N=1024: ~2046 messages a rank, minutes of
#                      simulation per call)
#   --alpha-beta       plain alpha-beta links (SMPI's message-size factors set to 1; "factors"
#                      column "1"), else SMPI's defaults ("smpi")
# N runs over powers of two; the ring runs last at each N, and N=1024's ring after everything
# else, so a stopped sweep keeps the cheap rows. Rows are appended as they come; at the end the
# markdown table of cifar_tools.smpi_table (with the model calibrated on SMPI's factors) is printed.
# Site assumptions: SimGrid 3.32 (libsimgrid-dev), python3; one simulation at a time.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

out="$CIFAR_ROOT/results/smpi-sweep.csv" max_np=1024 sizes="1048576 1262888" algorithms="mpi rhd ring"
ring_max_np=1024 alpha_us=27 gbps=10 alpha_beta=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --max-np) max_np="$2"; shift 2 ;;
    --sizes) sizes="$2"; shift 2 ;;
    --algorithms) algorithms="$2"; shift 2 ;;
    --ring-max-np) ring_max_np="$2"; shift 2 ;;
    --alpha-us) alpha_us="$2"; shift 2 ;;
    --gbps) gbps="$2"; shift 2 ;;
    --alpha-beta) alpha_beta=(--alpha-beta); shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "smpi_sweep.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$(dirname "$out")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
factors=$([[ ${#alpha_beta[@]} -gt 0 ]] && echo 1 || echo smpi)
[[ -s "$out" ]] || echo "factors,ranks,size_bytes,algorithm,time_us,busbw_gbps,check,model_us,sim_over_model" >"$out"

run_one() {  # N algorithm size
  local n=$1 algo=$2 size=$3
  cifar_tools smpi_platform flat --hosts "$n" --alpha-us "$alpha_us" --gbps "$gbps" \
    -o "$tmp/p$n.xml"
  local t0=$SECONDS
  "$CIFAR_ROOT/tools/smpi/smpi_allreduce.sh" --np "$n" --platform "$tmp/p$n.xml" --out "$tmp/row.csv" \
    "${alpha_beta[@]}" -- --algorithms "$algo" --min-bytes "$size" --max-bytes "$size" >"$tmp/log" 2>&1 ||
    { echo "smpi_sweep.sh: N=$n $algo $size failed:" >&2; tail -5 "$tmp/log" >&2; return 1; }
  python3 - "$tmp/row.csv" "$factors" "$algo" "$alpha_us" "$gbps" >>"$out" <<'PY'
import csv, math, sys
path, factors, algo, alpha_us, gbps = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
for r in csv.DictReader(open(path)):
    n, s = int(r["ranks"]), int(r["size_bytes"])
    t = float(r[f"{algo}_time_us"])
    beta_us = 8 / (gbps * 1e3)  # us per byte
    bytes_term = 2 * (n - 1) / n * s * beta_us
    model = {"ring": 2 * (n - 1) * alpha_us + bytes_term,
             "rhd": 2 * math.log2(n) * alpha_us + bytes_term}.get(algo)
    print(f"{factors},{n},{s},{algo},{t:.1f},{r[f'{algo}_busbw_gbps']},{r['check']},"
          + (f"{model:.1f},{t / model:.3f}" if model else ","))
PY
  echo "N=$n $algo $size: $(tail -1 "$out" | cut -d, -f5) us simulated, $((SECONDS - t0)) s wall" >&2
}

deferred=()
for ((n = 2; n <= max_np; n *= 2)); do
  for algo in $algorithms; do
    for size in $sizes; do
      if [[ $algo == ring && $n -gt $ring_max_np ]]; then continue; fi
      if [[ $algo == ring && $n -ge 1024 ]]; then deferred+=("$n $algo $size"); continue; fi
      run_one "$n" "$algo" "$size"
    done
  done
done
for d in "${deferred[@]}"; do
  # shellcheck disable=SC2086
  run_one $d
done
cifar_tools smpi_table "$out" --alpha-us "$alpha_us" --gbps "$gbps"
