#!/usr/bin/env bash
# Simulated weak-scaling step times: build-smpi/step_sim replays one training step (per-layer
# compute of an N=1 metrics file, the bucket all-reduces of the comm library as their gradients
# become ready, overlap on, the --bucket-mb auto plan of cifar_tools.scaling_model) at N ranks on a
# simulated cluster, beside the model's prediction.
#
#   tools/smpi/smpi_steps.sh --metrics R1.h5 [--out CSV] [--nps "2 4 ... 1024"]
#                       [--algorithms "ring rhd mpi hring auto"] [--ring-max-np 512]
#                       [--per-host 4] [--alpha-us 27] [--gbps 10] [--smpi-factors]
#
#   --out CSV        rows appended: ranks,algorithm,per_host,step_s,compute_s,model_s,wall_s
#                    (default results/smpi-steps.csv)
#   --ring-max-np N  the flat ring above N ranks is left to the model (N=1024: ~800 s of
#                    simulation per all-reduce of 1 MiB)
#   --per-host L     hierarchical rows (hring, hrhd) run on H = N/L hosts of L ranks sharing a
#                    NIC (cifar_tools.smpi_platform two-level); the others on a flat cluster
#   --smpi-factors   keep SMPI's message-size factors (default: plain alpha-beta links, factors 1,
#                    the link the model assumes)
# Settings: those of tools/smpi_allreduce.sh plus smpi/test:0 (SMPI charges each MPI_Test 0.1 ms
# of simulated time by default; the trainer's polls cost microseconds). N=1024 takes minutes per
# row: rows are appended as they come, the cheap ones first.
# Site assumptions: SimGrid 3.32 (libsimgrid-dev), /usr/bin/python3 with h5py; one at a time.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
SMPI_BUILD="${CIFAR_SMPI_BUILD:-$CIFAR_ROOT/build-smpi}"

metrics="" out="$CIFAR_ROOT/results/smpi-steps.csv" nps="2 4 8 16 32 64 128 256 512 1024"
algorithms="ring rhd mpi hring auto" ring_max_np=512 per_host=4 alpha_us=27 gbps=10 factors=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --metrics) metrics="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --nps) nps="$2"; shift 2 ;;
    --algorithms) algorithms="$2"; shift 2 ;;
    --ring-max-np) ring_max_np="$2"; shift 2 ;;
    --per-host) per_host="$2"; shift 2 ;;
    --alpha-us) alpha_us="$2"; shift 2 ;;
    --gbps) gbps="$2"; shift 2 ;;
    --smpi-factors) factors=smpi; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "smpi_steps.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -f "$metrics" ]] || { echo "smpi_steps.sh: --metrics FILE (an N=1 metrics file) is required" >&2; exit 2; }
command -v smpirun >/dev/null || { echo "smpi_steps.sh: smpirun not found (apt-get install libsimgrid-dev)" >&2; exit 2; }
if [[ ! -x "$SMPI_BUILD/step_sim" ]]; then
  cmake -S "$CIFAR_ROOT/tools/smpi" -B "$SMPI_BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$SMPI_BUILD" -j "$(nproc)" --target step_sim >/dev/null
fi
mkdir -p "$(dirname "$out")"
[[ -s "$out" ]] || echo "ranks,algorithm,per_host,step_s,compute_s,model_s,wall_s" >"$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cfg=(--cfg=smpi/simulate-computation:no --cfg=smpi/coll-selector:ompi --cfg=smpi/privatization:dlopen
     --cfg=smpi/test:0 --log=root.thresh:warning)
model_link=(--alpha-us "$alpha_us" --gbps "$gbps")
[[ $factors == 1 ]] && cfg+=(--cfg=smpi/lat-factor:0:1 --cfg=smpi/bw-factor:0:1)
[[ $factors == smpi ]] && model_link=(--calib "$CIFAR_ROOT/docs/smpi/calib-np2.csv")

for n in $nps; do
  for algo in $algorithms; do
    [[ $algo == ring && $n -gt $ring_max_np ]] && continue
    l=1
    if [[ $algo == h* ]]; then
      ((n >= 2 * per_host)) || continue
      l=$per_host
      cifar_tools smpi_platform two-level --hosts $((n / l)) --cores "$l" \
        --alpha-us "$alpha_us" --gbps "$gbps" -o "$tmp/p.xml"
    else
      cifar_tools smpi_platform flat --hosts "$n" --alpha-us "$alpha_us" --gbps "$gbps" -o "$tmp/p.xml"
    fi
    cifar_tools smpi_platform hostfile "$tmp/p.xml" --np "$n" >"$tmp/hosts"
    cifar_tools scaling_model plan --metrics "$metrics" --np "$n" --algorithm "$algo" \
      --per-host "$per_host" "${model_link[@]}" -o "$tmp/plan" >/dev/null
    model_s=$(sed -n 's/.*predicted step \([0-9.]*\) ms.*/\1/p' "$tmp/plan" | awk '{print $1 / 1000}')
    t0=$SECONDS
    smpirun -np "$n" -platform "$tmp/p.xml" -hostfile "$tmp/hosts" "${cfg[@]}" \
      "$SMPI_BUILD/step_sim" --plan "$tmp/plan" --steps 2 --csv "$tmp/row.csv" >"$tmp/log" 2>&1 ||
      { echo "smpi_steps.sh: N=$n $algo failed:" >&2; tail -5 "$tmp/log" >&2; continue; }
    IFS=, read -r _ step comp _ < <(tail -1 "$tmp/row.csv")
    echo "$n,$algo,$l,$step,$comp,$model_s,$((SECONDS - t0))" >>"$out"
    echo "N=$n $algo: step $step s simulated, model $model_s s, $((SECONDS - t0)) s wall ($(grep '^# ' "$tmp/log" | tail -n +2 | tr '\n' ' '))" >&2
  done
done
