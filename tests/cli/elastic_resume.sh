#!/usr/bin/env bash
# Resuming on another number of ranks (--global-batch), end to end with a small fake data set:
#  1. N=2 --global-batch 64 for 10 steps is the reference; a checkpoint at step 5 resumed at N'=1
#     and at N'=4 (with 2 threads and the ring all-reduce) for the remaining 5 steps ends with
#     weights within 1e-4 of each tensor's largest |value| of the reference (N'=2: bitwise);
#  2. a per-rank --batch-size checkpoint resumed on another N is refused with a line that names
#     --global-batch; an elastic checkpoint resumed with a per-rank batch is refused too;
#  3. a per-rank checkpoint (N=2, --batch-size 32) resumes elastically with --global-batch 64;
#  4. the same as 1 with PowerSGD (from step 2): resumed at N'=4 within 1e-4 of N=2's run (and at
#     N'=1, which has nothing to compress).
# usage: elastic_resume.sh <cifar_mpi> <source dir> <data dir (ignored)>
set -u
bin=$(realpath "$1"); src=$(realpath "$2")
tmp=$(mktemp -d); trap 'pkill -9 -f "$tmp" 2>/dev/null; [[ -z "${KEEP_TMP:-}" ]] && rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
source "$src/tests/cli/common.bash"
py=$(python_with h5py numpy)
[[ -z $py ]] && { echo "SKIP: no python3 with h5py and numpy"; exit 77; }
python3 "$src/tests/cli/make_fake_cifar.py" data 128  # 640 training images: 10 steps of 64 an epoch
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=1
args=(--data-dir "$tmp/data" --epochs 100 --no-eval --log-every 5)
run() { local n=$1; shift; mpirun -np "$n" --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 "$bin" "${args[@]}" "$@"; }
close() {  # close REFERENCE OTHER: every tensor within 1e-4 of the reference's largest |value|
  "$py" - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
names = []
a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
assert names
worst = max(float(np.abs(a[n][...] - b[n][...]).max() / np.abs(a[n][...]).max()) for n in names)
print(f"      largest relative difference {worst:.2e} over {len(names)} tensors")
sys.exit(0 if worst <= 1e-4 else 1)
PY
}

run 2 --global-batch 64 --max-steps 10 --save-weights full.h5 >full.log 2>&1 || fail "reference N=2" "$(tail -n 3 full.log)"
run 2 --global-batch 64 --max-steps 5 --checkpoint c5.h5 >part.log 2>&1 || fail "first 5 steps at N=2" "$(tail -n 3 part.log)"
for case in "1" "4 --threads 2 --allreduce ring" "2"; do
  read -r -a extra <<<"$case"
  n=${extra[0]}
  if run "${extra[@]}" --global-batch 64 --max-steps 10 --resume c5.h5 --save-weights "r$n.h5" >"r$n.log" 2>&1 &&
     grep -q "resuming c5.h5 at epoch 1 step 5" "r$n.log" && out=$(close full.h5 "r$n.h5"); then
    pass "N=2 checkpoint at step 5 resumed at N'=$case: $out"
  else
    fail "resume at N'=$case" "$(tail -n 3 "r$n.log")" "${out:-}"
  fi
done
if [[ -s r2.h5 ]] && cmp -s <(h5dump -d /fc1.weight full.h5 | tail -n +3) <(h5dump -d /fc1.weight r2.h5 | tail -n +3); then
  pass "resumed at the same N'=2: bitwise equal"
else fail "resumed at N'=2 differs bitwise"; fi

# PowerSGD's state across N: Q is the same on every rank; each new rank starts from the old ranks'
# mean error (all of the feedback the update sees), so the resumed run lands where N=2 does.
ps=(--compress powersgd --compress-start 2 --global-batch 64)
run 2 "${ps[@]}" --max-steps 10 --save-weights psfull.h5 >psfull.log 2>&1 || fail "PowerSGD reference N=2" "$(tail -n 3 psfull.log)"
run 2 "${ps[@]}" --max-steps 5 --checkpoint ps5.h5 >pspart.log 2>&1 || fail "PowerSGD first 5 steps" "$(tail -n 3 pspart.log)"
if run 4 "${ps[@]}" --max-steps 10 --resume ps5.h5 --save-weights ps4.h5 >ps4.log 2>&1 && out=$(close psfull.h5 ps4.h5); then
  pass "PowerSGD N=2 checkpoint at step 5 resumed at N'=4: $out"
else
  fail "PowerSGD resume at N'=4" "$(tail -n 3 ps4.log)" "${out:-}"
fi
# one rank has nothing to send, so it steps on its exact gradients: it resumes, and trains on
run 1 "${ps[@]}" --max-steps 10 --resume ps5.h5 >ps1.log 2>&1 && grep -q "resuming ps5.h5 at epoch 1 step 5" ps1.log &&
  pass "PowerSGD N=2 checkpoint resumed at N'=1" || fail "PowerSGD resume at N'=1" "$(tail -n 3 ps1.log)"

# 2. Refusals.
run 2 --batch-size 32 --max-steps 5 --checkpoint p5.h5 >p.log 2>&1 || fail "per-rank run" "$(tail -n 3 p.log)"
run 4 --batch-size 16 --max-steps 10 --resume p5.h5 >p4.log 2>&1 && fail "per-rank N=4 resume of N=2 should fail"
grep -q "world_size = 2, this run has world_size = 4 (with --global-batch 64 it resumes" p4.log &&
  pass "per-rank resume on another N refused: $(grep -o 'checkpoint is incompatible.*' p4.log)" ||
  fail "per-rank refusal message" "$(grep error p4.log)"
run 4 --batch-size 16 --max-steps 10 --resume c5.h5 >e4.log 2>&1 && fail "per-rank resume of an elastic checkpoint should fail"
grep -q "resume it with --global-batch 64" e4.log && pass "elastic checkpoint with a per-rank batch refused" ||
  fail "elastic checkpoint refusal" "$(grep error e4.log)"

# 3. A per-rank checkpoint resumes elastically.
if run 4 --global-batch 64 --max-steps 10 --resume p5.h5 --save-weights rp4.h5 >rp4.log 2>&1 && out=$(close full.h5 rp4.h5); then
  pass "per-rank N=2 checkpoint resumed at N'=4 with --global-batch 64: $out"
else fail "per-rank checkpoint elastic resume" "$(tail -n 3 rp4.log)" "${out:-}"; fi
((failures == 0))
