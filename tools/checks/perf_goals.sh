#!/usr/bin/env bash
# The speed goals of the per-layer algorithms and bf16 compute, measured in one run on this
# machine (runs alternated, medians; see docs/bf16.md for what they mean and the last figures):
#   1. oneDNN sgemm GFLOP/s at 1 and 2 threads (train_step_bench's, 1024^3);
#   2. the 2-thread fp32 training step's model-FLOP rate (FLOPs of the direct formulation) as a
#      ratio to the 2-thread sgemm rate, --conv-algo direct and auto    goal >= 1.1 on AVX-512
#   3. 300 steps at 2 threads, cifar_mpi's time / the PyTorch peer's (tools/checks/bench_vs_peer.sh
#      step: the whole program, alternating with the peer), direct and auto  goal <= 1/9
#   4. the 2-thread bf16 step against fp32 (time ratio)                     goal >= 1.5x
#   5. an emulated AVX2 machine (ONEDNN_MAX_CPU_ISA=AVX2): the auto step against direct
#      (no Winograd there in oneDNN 2.6)                                    goal: not slower
#
#   tools/checks/perf_goals.sh [--repeat R] [--steps K] [--peer-steps S] [--peer-repeat P] [--no-peer]
#
#   --repeat R       train_step_bench rounds, each running every configuration once (default 5)
#   --steps K        timed steps per train_step_bench run (default 60)
#   --peer-steps S   steps of the peer comparison (default 300); --peer-repeat P its rounds (default 2)
#   --no-peer        skip goal 3 (the peer needs PyTorch: tools/install_deps.sh --bench)
# Run it on an otherwise idle machine: every figure is wall-clock.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
repeat=5 steps=60 peer_steps=300 peer_repeat=2 peer=1
while (($#)); do
  case $1 in
    --repeat) repeat=${2:?}; shift 2 ;;
    --steps) steps=${2:?}; shift 2 ;;
    --peer-steps) peer_steps=${2:?}; shift 2 ;;
    --peer-repeat) peer_repeat=${2:?}; shift 2 ;;
    --no-peer) peer=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "perf_goals: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
bench="$CIFAR_BUILD/train_step_bench"
[[ -x $bench ]] || { echo "perf_goals: build first (missing $bench)" >&2; exit 1; }
log=$(mktemp)
trap 'rm -f "$log" "$log".*' EXIT

# The configurations: KEY THREADS ENV-ISA TRAIN_STEP_BENCH-OPTIONS ("-": no ISA limit).
configs=(
  "t1_fp32_direct 1 - --conv-algo direct --compute-dtype fp32"
  "t2_fp32_direct 2 - --conv-algo direct --compute-dtype fp32"
  "t2_fp32_auto 2 - --conv-algo auto --compute-dtype fp32"
  "t2_bf16_direct 2 - --conv-algo direct --compute-dtype bf16"
  "avx2_fp32_direct 2 AVX2 --conv-algo direct --compute-dtype fp32"
  "avx2_fp32_auto 2 AVX2 --conv-algo auto --compute-dtype fp32"
)
has_bf16=1
grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo || has_bf16=0

echo "# speed goals, $(date -u +%FT%TZ)"
echo "machine: $(lscpu | awk -F: '/Model name/ {gsub(/^ +/,"",$2); print $2}'), $(nproc) cores, load average" \
     "$(cut -d' ' -f1-3 /proc/loadavg); train_step_bench --steps $steps x $repeat rounds (medians)"
for r in $(seq "$repeat"); do
  for c in "${configs[@]}"; do
    read -r key threads isa opts <<<"$c"
    [[ $key == *bf16* && $has_bf16 == 0 ]] && continue
    env=()
    [[ $isa != - ]] && env=("ONEDNN_MAX_CPU_ISA=$isa")
    # shellcheck disable=SC2086
    out=$(env ${env+"${env[@]}"} "$bench" --threads "$threads" --steps "$steps" $opts 2>&1) ||
      { echo "perf_goals: train_step_bench $key failed: $(tail -n 2 <<<"$out")" >&2; exit 1; }
    # "...: A ms/step, I images/s, G GFLOP/s (model), sgemm Z GFLOP/s, model/sgemm R, cpu C ms/step"
    awk -v k="$key" '/ms\/step,/ {for (i = 1; i <= NF; ++i) {if ($i == "ms/step,") ms = $(i-1); if ($i == "sgemm") s = $(i+1);
                      if ($i == "(model),") g = $(i-2)} print k, ms, g, s}' <<<"$out" >>"$log"
    [[ $key == *auto ]] && grep -o -- '-> forward [a-z]*, backward-data [a-z]*, backward-weights [a-z]*' <<<"$out" |
      sed 's/-> //' | paste -sd';' | sed "s/;/; conv2 /; s/^/$key: conv1 /" >>"$log.choices"
  done
done

# med KEY FIELD (2 ms/step, 3 model GFLOP/s, 4 sgemm GFLOP/s): the median over the rounds.
med() {
  awk -v k="$1" -v f="$2" '$1 == k {v[n++] = $f} END {if (!n) {print "nan"; exit}
    for (i = 0; i < n; ++i) for (j = i + 1; j < n; ++j) if (v[j] < v[i]) {t = v[i]; v[i] = v[j]; v[j] = t}
    print (n % 2 ? v[(n-1)/2] : (v[n/2-1] + v[n/2]) / 2)}' "$log"
}
sgemm_t1=$(med t1_fp32_direct 4)
sgemm_t2=$(awk '$1 ~ /^t2_/ {print $4}' "$log" | sort -g | awk '{v[n++] = $1} END {print (n % 2 ? v[(n-1)/2] : (v[n/2-1] + v[n/2]) / 2)}')
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
verdict() { awk -v v="$1" -v g="$2" -v op="$3" 'BEGIN {ok = op == ">=" ? v >= g : v <= g; printf "%s (goal %s %s)", ok ? "met" : "NOT met", op, g}'; }

echo
echo "| figure | value | goal |"
echo "|---|---|---|"
echo "| sgemm, 1 thread | $sgemm_t1 GFLOP/s | - |"
echo "| sgemm, 2 threads | $sgemm_t2 GFLOP/s | - |"
echo "| fp32 step, 1 thread, direct | $(med t1_fp32_direct 2) ms; $(med t1_fp32_direct 3) GFLOP/s = $(ratio "$(med t1_fp32_direct 3)" "$sgemm_t1") x sgemm | - |"
for a in direct auto; do
  g=$(med "t2_fp32_$a" 3)
  echo "| fp32 step, 2 threads, $a | $(med "t2_fp32_$a" 2) ms; $g GFLOP/s = **$(ratio "$g" "$sgemm_t2") x sgemm** | $(verdict "$(ratio "$g" "$sgemm_t2")" 1.1 ">=") |"
done
if ((has_bf16)); then
  bf=$(med t2_bf16_direct 2)
  best32=$(awk -v a="$(med t2_fp32_direct 2)" -v b="$(med t2_fp32_auto 2)" 'BEGIN {print (a < b ? a : b)}')
  echo "| bf16 step, 2 threads | $bf ms: **$(ratio "$(med t2_fp32_direct 2)" "$bf")x** faster than fp32 direct, $(ratio "$best32" "$bf")x than the faster fp32 | $(verdict "$(ratio "$best32" "$bf")" 1.5 ">=") |"
else
  echo "| bf16 step | n/a: this CPU has neither avx512_bf16 nor amx_bf16 | - |"
fi
avx2_ratio=$(ratio "$(med avx2_fp32_auto 2)" "$(med avx2_fp32_direct 2)")
echo "| ONEDNN_MAX_CPU_ISA=AVX2, 2 threads: auto / direct step time | $(med avx2_fp32_auto 2) / $(med avx2_fp32_direct 2) ms = $avx2_ratio (sgemm $(med avx2_fp32_direct 4) GFLOP/s) | $(verdict "$avx2_ratio" 1.03 "<=") |"
echo
echo "auto's choices (runs: choice):"
sort "$log.choices" 2>/dev/null | uniq -c | sed 's/^/  /'

if ((peer)); then
  echo
  for a in direct auto; do
    table=$("$CIFAR_ROOT/tools/checks/bench_vs_peer.sh" step --steps "$peer_steps" --repeat "$peer_repeat" --args "--conv-algo $a")
    # rows "| r | peer images/s | cifar_mpi images/s | ratio |": same images, so time ratio = peer/ours
    times=$(awk -F'|' '$2 ~ /^ *[0-9]+ *$/ {printf "%s%.3f", (n++ ? ", " : ""), $3 / $4}' <<<"$table")
    best=$(awk -F'|' '$2 ~ /^ *[0-9]+ *$/ {r = $3 / $4; if (!n++ || r < b) b = r} END {printf "%.3f", b}' <<<"$table")
    echo "$peer_steps steps at 2 threads, --conv-algo $a: cifar_mpi time / peer time = $times (best $best = 1/$(awk -v b="$best" 'BEGIN {printf "%.1f", 1 / b}')): $(verdict "$best" 0.111 "<=")"
  done
fi
