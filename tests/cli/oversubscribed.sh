#!/usr/bin/env bash
# More ranks than cores: N = 4 and 8 on a 2-core machine finish (Open MPI's --oversubscribe with
# --bind-to none and mpi_yield_when_idle, so waiting ranks give their core away), every strategy
# at N = 3 (a ring that is not a power of two) agrees on the loss, and --global-batch splits or
# refuses an uneven split.
# usage: oversubscribed.sh <cifar_mpi> <source dir> <data dir (ignored)>
set -u
bin=$(realpath "$1"); src="$2"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
python3 "$src/tests/cli/make_fake_cifar.py" data 256
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
flags=(--oversubscribe --bind-to none --mca mpi_yield_when_idle 1)
common=(--data-dir data --batch-size 16 --max-steps 4 --no-eval --threads 1)
fail=0
ok() { echo "PASS $1"; }
bad() { echo "FAIL $1"; sed 's/^/      /' "$2" | tail -n 5; fail=1; }

for n in 4 8; do
  if timeout 180 mpirun -np "$n" "${flags[@]}" "$bin" "${common[@]}" >out 2>&1 && grep -q "summary: $n rank(s)" out; then
    ok "N=$n oversubscribed finishes"
  else
    bad "N=$n oversubscribed" out
  fi
done

# Same data, same steps: every strategy reaches the same loss at N = 3 (printed to 4 digits).
losses=()
for a in naive mpi ring; do
  timeout 120 mpirun -np 3 "${flags[@]}" "$bin" "${common[@]}" --log-every 1 --allreduce "$a" --overlap >out 2>&1 ||
    bad "N=3 $a" out
  losses+=("$(grep -o 'loss [0-9.]*' out | tail -n 1)")
done
if [[ -n "${losses[0]}" && "${losses[0]}" == "${losses[1]}" && "${losses[1]}" == "${losses[2]}" ]]; then
  ok "N=3 naive, mpi and ring agree (${losses[0]})"
else
  echo "FAIL N=3 strategies disagree: ${losses[*]}"; fail=1
fi

if timeout 60 mpirun -np 4 "${flags[@]}" "$bin" --data-dir data --global-batch 30 --max-steps 1 --no-eval >out 2>&1; then
  bad "--global-batch 30 on 4 ranks should fail" out
elif grep -q "global-batch 30 does not divide evenly across 4 ranks" out; then
  ok "--global-batch 30 on 4 ranks refused"
else
  bad "--global-batch 30 message" out
fi
if timeout 60 mpirun -np 4 "${flags[@]}" "$bin" --data-dir data --global-batch 32 --max-steps 2 --no-eval >out 2>&1 &&
   grep -q "per-rank batch 8" out; then
  ok "--global-batch 32 on 4 ranks gives 8 per rank"
else
  bad "--global-batch 32" out
fi
exit $fail
