#!/usr/bin/env bash
# Overlap and bucketing made visible: cifar_mpi on simulated hosts joined by shaped links
# (tools/sim_hosts.sh), every all-reduce strategy x bucket size x overlap, at N = 2 (2 hosts x 1
# rank) and N = 4 (2 hosts x 2 ranks), at each link rate; the all-reduce benchmark across the
# same hosts for the cost model; then the comparison plots and the cost model's predictions.
#
#   tools/studies/link_sweep.sh [--rates "1gbit 100mbit"] [--steps 40] [--out DIR] [--topologies "2x1 2x2"]
#
#   --rates LIST       link rates, as tools/sim_hosts.sh --rate takes them (default "1gbit 100mbit")
#   --steps K          training steps per run (default 40; the first 2 are left out of the model
#                      fit as warm-up by tools/cost_model.py)
#   --topologies LIST  HOSTSxRANKS_PER_HOST (default "2x1 2x2")
#   --buckets LIST     bucket sizes in MB (default "25 0.25": one bucket; and fc2+fc1, then the convs)
#   --out DIR          results folder (default results/links-YYYYmmdd-HHMMSS):
#                        runs/<rate>-<H>x<R>-<strategy>-<bucket>mb-ov<on|off>.h5 and .log
#                        runs/n1.h5 (one process, no communication: the cost model's T1)
#                        order/<rate>-<H>x<R>-ring-...-<flat|hosts>[-bynode].h5 (at R > 1: the flat
#                        ring against the hierarchical one, ranks placed by slot and round-robin
#                        by host; kept out of the cost model)
#                        bench/bench-<rate>-np<N>-rph<R>.csv (allreduce_bench rows)
#                        <rate>/time_breakdown.png, <rate>/compare.md (tools/plot_metrics.py --compare)
#                        cost/ (tools/cost_model.py: fit, predictions, extrapolation)
#   --no-bench         skip the all-reduce benchmark (and so the cost model)
#
# At one rank per host it also runs the ring with the smaller buckets at a per-rank batch of 512
# (4x the compute, so a step's communication is shorter than its backward), overlap off and on.
#
# Needs root (network namespaces, tc); uses the built $CIFAR_BUILD (default build/) binaries.
# A rate's runs take about steps x (compute + bytes/rate) each, plus ~3 s of start-up.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
RATES="1gbit 100mbit"
STEPS=40
TOPOS="2x1 2x2"
BUCKETS="25 0.25"
OUT=""
BENCH=1
while (($#)); do
  case $1 in
    --rates) RATES=${2:?--rates needs a list}; shift 2 ;;
    --steps) STEPS=${2:?--steps needs a number}; shift 2 ;;
    --topologies) TOPOS=${2:?--topologies needs a list}; shift 2 ;;
    --buckets) BUCKETS=${2:?--buckets needs a list}; shift 2 ;;
    --out) OUT=${2:?--out needs a folder}; shift 2 ;;
    --no-bench) BENCH=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "link_sweep: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
[[ $STEPS =~ ^[1-9][0-9]*$ ]] || { echo "link_sweep: --steps must be a positive integer, got '$STEPS'" >&2; exit 2; }
for t in $TOPOS; do
  [[ $t =~ ^[1-9][0-9]*x[1-9][0-9]*$ ]] || { echo "link_sweep: --topologies: '$t' is not HOSTSxRANKS (e.g. 2x1)" >&2; exit 2; }
done
for b in $BUCKETS; do
  [[ $b =~ ^[0-9]*\.?[0-9]+$ ]] || { echo "link_sweep: --buckets: '$b' is not a size in MB" >&2; exit 2; }
done
OUT=${OUT:-$CIFAR_ROOT/results/links-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT/runs" "$OUT/bench" "$OUT/order"
OUT=$(cd "$OUT" && pwd)  # absolute: the per-rate folders link to the runs
sim="$CIFAR_ROOT/tools/sim_hosts.sh"
bin="$CIFAR_BUILD/cifar_mpi"
cd "$CIFAR_ROOT"

echo "link_sweep: one process (T1)"
"$bin" --threads 1 --max-steps "$STEPS" --no-eval --log-every 100000 --metrics "$OUT/runs/n1.h5" --force \
  >"$OUT/runs/n1.log" 2>&1 || { echo "link_sweep: run failed; see $OUT/runs/n1.log" >&2; exit 1; }
for rate in $RATES; do
  for topo in $TOPOS; do
    hosts=${topo%x*} rph=${topo#*x} np=$((${topo%x*} * ${topo#*x}))
    if ((BENCH)); then
      # Up to 4 MB (3x the model's gradients): enough sizes to fit latency and bandwidth.
      echo "link_sweep: $rate $topo: all-reduce benchmark"
      b="$OUT/bench/bench-$rate-np$np-rph$rph"
      "$sim" --hosts "$hosts" --ranks-per-host "$rph" --rate "$rate" --check-rate --bench -- \
        --csv "$b.csv" --min-bytes 16 --max-bytes 4194304 --iters 5 --rounds 2 >"$b.log" 2>&1 ||
        { echo "link_sweep: benchmark failed; see $b.log" >&2; exit 1; }
    fi
    for strategy in naive mpi ring; do
      for bucket in $BUCKETS; do
        # naive has one bucket per tensor whatever the size: run it once.
        [[ $strategy == naive && $bucket != "${BUCKETS%% *}" ]] && continue
        for overlap in off on; do
          name="$rate-$topo-$strategy-${bucket}mb-ov$overlap"
          echo "link_sweep: $name"
          "$sim" --hosts "$hosts" --ranks-per-host "$rph" --rate "$rate" -- "$bin" --threads 1 --max-steps "$STEPS" \
            --no-eval --log-every 100000 --allreduce "$strategy" --bucket-mb "$bucket" $([[ $overlap == on ]] && echo --overlap || echo --no-overlap) \
            --metrics "$OUT/runs/$name.h5" --force >"$OUT/runs/$name.log" 2>&1 ||
            { echo "link_sweep: run failed; see $OUT/runs/$name.log" >&2; exit 1; }
        done
      done
    done
    if ((rph == 1)); then
      # Overlap where a step's communication is shorter than its backward: 4x the compute
      # (per-rank batch 512), ring, the smaller buckets.
      small=${BUCKETS##* }
      for overlap in off on; do
        name="$rate-$topo-ring-${small}mb-ov$overlap-b512"
        echo "link_sweep: $name"
        "$sim" --hosts "$hosts" --ranks-per-host "$rph" --rate "$rate" -- "$bin" --threads 1 --batch-size 512 \
          --max-steps "$(((STEPS + 3) / 4 + 2))" --no-eval --log-every 100000 --allreduce ring --bucket-mb "$small" \
          $([[ $overlap == on ]] && echo --overlap || echo --no-overlap) --metrics "$OUT/runs/$name.h5" --force >"$OUT/runs/$name.log" 2>&1 ||
          { echo "link_sweep: run failed; see $OUT/runs/$name.log" >&2; exit 1; }
      done
    fi
    if ((rph > 1)); then
      # What the ring's layout is worth across hosts (kept out of the cost model, in order/). Open
      # MPI places ranks by slot (0,1 on host 0; 2,3 on host 1): a flat ring 0>1>2>3>0 then crosses
      # each link once per step, so each host's link carries 2(N-1)/N of the gradients (1.5x at
      # 2x2) against 2(H-1)/H for the hierarchical ring (--ring-layout hosts, the sweep's ring).
      # Placed round-robin by node (0,2 on host 0; 1,3 on host 1) every hop of a flat ring crosses
      # a link; the hierarchical ring finds the hosts whatever the order.
      for order in slot node; do
        for layout in flat hosts; do
          [[ $order == slot && $layout == hosts ]] && continue  # that one is in runs/
          name="$rate-$topo-ring-${BUCKETS%% *}mb-ovoff-$layout"
          [[ $order == node ]] && name+="-bynode"
          echo "link_sweep: $name"
          "$sim" --hosts "$hosts" --ranks-per-host "$rph" --rate "$rate" --mca rmaps_base_mapping_policy "$order" \
            --no-meta -- "$bin" --threads 1 --max-steps "$STEPS" --no-eval --log-every 100000 --allreduce ring \
            --ring-layout "$layout" --bucket-mb "${BUCKETS%% *}" --no-overlap --meta hosts="$hosts" \
            --meta ranks_per_host="$rph" --meta link_rate="$rate" --meta rank_order="by-$order" \
            --metrics "$OUT/order/$name.h5" --force >"$OUT/order/$name.log" 2>&1 ||
            { echo "link_sweep: run failed; see $OUT/order/$name.log" >&2; exit 1; }
        done
      done
    fi
  done
  mkdir -p "$OUT/$rate"
  for f in "$OUT"/runs/"$rate"-*.h5 "$OUT"/order/"$rate"-*.h5; do
    [[ -e $f ]] && ln -sf "$f" "$OUT/$rate/"
  done
  cifar_tools plot_metrics "$OUT/$rate" --compare >/dev/null
done
if ((BENCH)); then
  mkdir -p "$OUT/cost"
  cifar_tools cost_model "$OUT/bench" --metrics "$OUT/runs" --out "$OUT/cost" | tee "$OUT/cost/cost_model.txt" ||
    echo "link_sweep: the cost model failed (see above)" >&2
fi
echo "link_sweep: results in $OUT"
