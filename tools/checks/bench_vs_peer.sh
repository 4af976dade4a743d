#!/usr/bin/env bash
# cifar_mpi against the PyTorch/gloo peer (../shared/bench/pytorch_peer.py) on this machine, in
# one run, alternating the two so that both see the same machine state; prints Markdown tables
# of images/s and the ratios.
#
#   tools/checks/bench_vs_peer.sh step     [--steps K]   one process, 2 threads, K steps (default 200)
#   tools/checks/bench_vs_peer.sh scaling  [--epochs E]  1 x 1 thread vs 2 ranks x 1 thread, every
#                                                 strategy, overlap off/on, vs peer seed and ddp;
#       plus the machine's own ceiling: two independent 1-thread processes at once, each doing one
#       rank's share of the steps with no communication. What they lose against one process alone
#       is what the two cores lose to each other (shared caches, memory bandwidth, clocks, a
#       hypervisor), a loss no all-reduce can avoid; "of ceiling" divides it out.
# Options: --peer FILE (default ../shared/bench/pytorch_peer.py), --data DIR, --repeat R,
# --args "ARGS" (step mode: more cifar_mpi options, e.g. "--conv-algo auto"; tools/checks/perf_goals.sh).
# Needs the peer's packages: tools/install_deps.sh --bench.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

case "${1:-}" in -h | --help) cifar_usage; exit 0 ;; esac
mode="${1:-step}"; shift || true
steps=200; epochs=1; repeat=2; ours_args=()
peer="$CIFAR_ROOT/../shared/bench/pytorch_peer.py"
data="$CIFAR_ROOT/data/cifar-10-batches-bin"
while (($#)); do
  case "$1" in
    --steps) steps="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    --peer) peer="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --args) read -r -a ours_args <<<"$2"; shift 2 ;;
    *) echo "bench_vs_peer: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ -f "$peer" ]] || { echo "bench_vs_peer: peer script not found: $peer (--peer FILE)" >&2; exit 1; }
[[ -f "$data/data_batch_1.bin" ]] || { echo "bench_vs_peer: no CIFAR-10 at $data (tools/get_cifar10.sh)" >&2; exit 1; }
/usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null ||
  { echo "bench_vs_peer: the peer needs PyTorch: tools/install_deps.sh --bench" >&2; exit 1; }
bin="$CIFAR_BUILD/cifar_mpi"
[[ -x "$bin" ]] || { echo "bench_vs_peer: build first (missing $bin)" >&2; exit 1; }
mpi_flags=(--bind-to none --oversubscribe)
log=$(mktemp); trap 'rm -f "$log"' EXIT

# peer ARGS... -> prints "images/s total_s"
run_peer() {
  /usr/bin/python3 "$peer" --data "$data" "$@" 2>/dev/null | tail -n 1 |
    /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(d["img_per_s"], d["total_s"], d["test_acc"])'
}
# ours NP ARGS... -> prints "images/s train_seconds test_acc"
run_ours() {
  local np="$1"; shift
  mpirun -np "$np" "${mpi_flags[@]}" "$bin" --data-dir "$data" --log-every 100000 "$@" >"$log" 2>&1 ||
    { cat "$log" >&2; exit 1; }
  awk '/images\/s \(all ranks\)/ {ips=$NF} /total training time/ {t=$4} /final test accuracy/ {acc=$NF}
       END {gsub("%","",acc); printf "%s %s %s\n", ips, t, (acc==""?"n/a":acc/100)}' "$log"
}

echo "# cifar_mpi vs PyTorch peer, $(date -u +%FT%TZ)"
echo "machine: $(lscpu | awk -F: '/Model name/ {gsub(/^ +/,"",$2); print $2}'), $(nproc) cores;" \
     "sgemm and step figures: $("$CIFAR_BUILD/train_step_bench" --threads "$(nproc)" --steps 30 2>/dev/null | tail -n 1)"
echo

if [[ "$mode" == step ]]; then
  echo "## One process, 2 threads, $steps steps (batch 128), alternating runs${ours_args[*]:+; cifar_mpi ${ours_args[*]}}"
  echo
  echo "| run | peer images/s | cifar_mpi images/s | ratio |"
  echo "|---|---|---|---|"
  for r in $(seq "$repeat"); do
    read -r p_ips _ _ < <(run_peer --nproc 1 --threads 2 --max-iters "$steps")
    read -r o_ips _ _ < <(run_ours 1 --threads 2 --max-steps "$steps" --no-eval ${ours_args[@]+"${ours_args[@]}"})
    echo "| $r | $p_ips | $o_ips | $(awk -v a="$o_ips" -v b="$p_ips" 'BEGIN {printf "%.2fx", a/b}') |"
  done
elif [[ "$mode" == scaling ]]; then
  echo "## $epochs epoch(s): 1 rank x 1 thread vs 2 ranks x 1 thread"
  echo
  echo "| run | train s | images/s | test acc | efficiency T1/(2*T2) | vs peer ddp time |"
  echo "|---|---|---|---|---|---|"
  # (rows below the N = 2 runs: "of ceiling" = T_ceiling / T2, the efficiency the machine allows)
  read -r _ t1 a1 < <(run_ours 1 --threads 1 --epochs "$epochs")
  echo "| cifar_mpi N=1 x 1 thread | $t1 | - | $a1 | - | - |"
  # The ceiling: two independent processes, each with one rank's steps (25,000 images / 128 = 196).
  share=$((196 * epochs))
  clog=$(mktemp); trap 'rm -f "$log" "$clog" "$clog.2"' EXIT
  "$bin" --data-dir "$data" --threads 1 --max-steps "$share" --no-eval --log-every 100000 >"$clog" 2>&1 &
  c1=$!
  "$bin" --data-dir "$data" --threads 1 --max-steps "$share" --no-eval --log-every 100000 --seed 7 >"$clog.2" 2>&1 &
  c2=$!
  wait "$c1" && wait "$c2" || { cat "$clog" "$clog.2" >&2; exit 1; }
  tc=$(awk '/total training time/ {t=$4} END {print t}' "$clog" "$clog.2" | sort -g | tail -n 1)
  ceiling=$(awk -v a="$t1" -v b="$tc" 'BEGIN {printf "%.1f%%", 100*a/(2*b)}')
  echo "| ceiling: 2 independent processes x $share steps, no comm | $tc | - | - | $ceiling | - |"
  read -r p_ips p_t p_acc < <(run_peer --nproc 2 --threads 1 --mode ddp --epochs "$epochs")
  echo "| peer ddp 2 x 1 thread | $p_t | $p_ips | $p_acc | - | 1.00 |"
  read -r s_ips s_t s_acc < <(run_peer --nproc 2 --threads 1 --mode seed --epochs "$epochs")
  echo "| peer seed 2 x 1 thread | $s_t | $s_ips | $s_acc | - | $(awk -v a="$s_t" -v b="$p_t" 'BEGIN {printf "%.2f", a/b}') |"
  for strategy in naive mpi ring; do
    for overlap in off on; do
      read -r ips t2 acc < <(run_ours 2 --threads 1 --epochs "$epochs" --allreduce "$strategy" $([[ $overlap == on ]] && echo --overlap || echo --no-overlap))
      eff=$(awk -v a="$t1" -v b="$t2" -v c="$tc" 'BEGIN {printf "%.1f%% (%.1f%% of ceiling)", 100*a/(2*b), 100*c/b}')
      echo "| cifar_mpi N=2 $strategy overlap $overlap | $t2 | $ips | $acc | $eff | $(awk -v a="$t2" -v b="$p_t" 'BEGIN {printf "%.3f", a/b}') |"
    done
  done
else
  echo "bench_vs_peer: unknown mode '$mode' (step | scaling)" >&2; exit 2
fi
