#!/usr/bin/env bash
# The failure injector (tools/recovery/inject_failures.sh) on 2 ranks with a small fake data set:
# an uninterrupted run, then the same run under the recovering launcher with a rank killed every
# 2 s until it ends. Whatever the machine's speed (a fast one may finish before the first
# failure), the tool's report must hold together:
#  1. both runs end (exit 0) with the same final test accuracy ("as uninterrupted": the resume is
#     bitwise);
#  2. it prints one "recovery after" line per failure injected (the last may come too late to
#     cost one), and the goodput;
#  3. no process of the run is left.
# usage: inject_failures.sh <cifar_mpi> <source dir> <data dir (ignored)>
set -u
bin=$(realpath "$1"); src=$(realpath "$2")
source "$src/tests/cli/common.bash"
fake_run_setup 128

"$src/tools/recovery/inject_failures.sh" --np 2 --every 2 --seed 3 --signal KILL --out out \
  --mpirun-args "--oversubscribe --bind-to none --mca mpi_yield_when_idle 1" -- \
  --data-dir "$tmp/data" --batch-size 32 --epochs 100 --max-steps 60 --eval --threads 1 \
  --checkpoint-every 4 >report.txt 2>report.err
rc=$?
injected=$(sed -n 's/.*, \([0-9]*\) failure(s) injected.*/\1/p' report.txt)
recoveries=$(grep -c "^  recovery after" report.txt)
[[ $rc -eq 0 ]] && grep -q "final test accuracy [0-9.]*% (as uninterrupted)" report.txt &&
  pass "with failures: exit 0, the uninterrupted run's final accuracy ($(grep -o 'with failures: .*' report.txt))" ||
  fail "with failures: exit $rc" "$(cat report.txt; tail -n 3 report.err)"
# One recovery per failure, but the last signal may reach a rank already on its way out.
[[ -n $injected ]] && ((recoveries <= injected && recoveries >= injected - 1)) && grep -q "^goodput: [0-9.]*% " report.txt &&
  pass "$injected failure(s), $recoveries recovery line(s), $(grep -o '^goodput: [0-9.]*%' report.txt)" ||
  fail "report: '$injected' failure(s) injected, $recoveries recovery line(s)" "$(cat report.txt)"
sleep 1
left=$(pgrep -f "$tmp/data" | wc -l)
((left == 0)) && pass "no process left" || fail "$left process(es) left"
((failures == 0))
