#!/usr/bin/env bash
# --overlap's trial (include/cifar_mpi/app/overlap_trial.hpp), whatever its verdict on this machine:
#   - global steps 2, 5, 7, 8 are held back and 3, 4, 6, 9 overlapped, on every rank alike;
#   - from step 10 on every rank follows the one verdict the log states: overlap on (but the
#     reference steps 2 and 3 of every 50) or held back on every step; the summary repeats it;
#   - the weights are bitwise those of --no-overlap and of --no-overlap-trial (ring: the same sums);
#   - --no-overlap-trial holds back only steps 2 and 3, and logs no verdict;
#   - over 160 steps the reviews (steps 1-4 of every 50) follow the verdicts the log states in
#     turn, every rank alike, and the weights are still those of --no-overlap.
# usage: overlap_trial.sh <cifar_mpi> <source dir> <data dir (ignored)>
set -u
bin=$(realpath "$1"); src=$(realpath "$2")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
py=/usr/bin/python3
$py "$src/tests/cli/make_fake_cifar.py" data 512
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi=(mpirun -np 2 --oversubscribe --bind-to none --mca mpi_yield_when_idle 1)
common=(--data-dir data --batch-size 16 --max-steps 14 --no-eval --threads 1 --allreduce ring
        --bucket-mb 0.25 --seed 3 --log-every 1000 --force)
fail=0
ok() { echo "PASS $1"; }
bad() { echo "FAIL $1"; [[ -f ${2:-} ]] && sed 's/^/      /' "$2" | tail -n 8; fail=1; }

run() {  # name, options...
  local name=$1; shift
  timeout 180 "${mpi[@]}" "$bin" "${common[@]}" --metrics "$name.h5" --save-weights "$name.w.h5" "$@" \
    >"$name.out" 2>&1 || bad "$name: exit $?" "$name.out"
}
run trial --overlap
run always --overlap --no-overlap-trial
run none --no-overlap
common[5]=160  # --max-steps
run long --overlap --epochs 2
run long_none --no-overlap --epochs 2

# The verdict the log states, and the held-back pattern it implies.
verdict=$(grep -oE "overlap (kept|off from step 11)" trial.out | head -n 1)
lines=$(grep -cE "\] overlap (kept|off from step)" trial.out)
if [[ -n $verdict && $lines -eq 1 ]] && grep -q "overlap: trial .*$verdict" trial.out; then
  ok "one verdict, logged and in the summary: $verdict"
else
  bad "the trial's verdict (found '$verdict' in $lines log line(s))" trial.out
fi
if grep -qE "overlap (kept|off from step)" always.out; then bad "--no-overlap-trial logged a verdict" always.out; fi

$py - "$verdict" <<'EOF' || fail=1
import sys
import h5py
import numpy as np

kept = sys.argv[1] == "overlap kept"
def overlapped(name):
    with h5py.File(name + ".h5", "r") as f:
        o = f["steps/overlapped"][()]
    if not (o == o[:, :1]).all():
        print(f"FAIL {name}: the ranks disagree on which steps overlap: {o.T.tolist()}")
        sys.exit(1)
    return o[:, 0].tolist()

held_trial = [1, 1, 0, 1, 1, 0, 1, 0, 0, 1] + ([1] * 4 if kept else [0] * 4)
held_always = [1, 1, 0, 0] + [1] * 10
for name, want in (("trial", held_trial), ("always", held_always), ("none", [0] * 14)):
    got = overlapped(name)
    print(("PASS" if got == want else "FAIL") + f" {name}: steps/overlapped {got}" + ("" if got == want else f", want {want}"))
    if got != want:
        sys.exit(1)

# The long run: every step the kind the verdict in force says (the log's verdict lines, in order).
verdicts = []  # (first step it applies to, 0-based; kept?)
for line in open("long.out"):
    if "] overlap kept" in line:
        verdicts.append((10, True))
    elif "] overlap off from step " in line or "] overlap back on from step " in line:
        n = int(line.split(" from step ")[1].split(":")[0])
        verdicts.append((n - 1, "back on" in line))
if not verdicts or verdicts[0][0] != 10:
    print(f"FAIL long: no trial verdict logged: {verdicts}")
    sys.exit(1)
want = [1, 1, 0, 1, 1, 0, 1, 0, 0, 1]
for step in range(10, 160):
    since, kept = [v for v in verdicts if v[0] <= step][-1]
    r = step % 50
    reviewed = step - r + 1 >= since if 1 <= r <= 4 else False
    want.append(int(r not in (2, 3)) if kept else int(r in (2, 3) and reviewed))
got = overlapped("long")
print(("PASS" if got == want else "FAIL") + f" long: 160 steps follow the verdicts {verdicts}" +
      ("" if got == want else f": steps/overlapped {got}, want {want}"))
if got != want:
    sys.exit(1)

def weights(name):
    with h5py.File(name + ".w.h5", "r") as f:
        return {k: f[k][()] for k in f.keys() if isinstance(f[k], h5py.Dataset)}
base = weights("none")
for name, ref in (("trial", base), ("always", base), ("long", weights("long_none"))):
    w = weights(name)
    same = w.keys() == ref.keys() and all(np.array_equal(w[k], ref[k]) for k in ref)
    print(("PASS" if same else "FAIL") + f" {name}: weights bitwise equal to --no-overlap")
    if not same:
        sys.exit(1)
EOF
exit $fail
