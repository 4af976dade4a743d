#!/usr/bin/env bash
# Time to accuracy, end to end on a small fake data set (random pixels: ~10% accuracy):
#  1. --target-accuracy reached at the first --eval-every evaluation stops every rank there, exit 0;
#     the metrics file's evals/ and summary say when (with and without evaluation time);
#  2. a target never reached ends normally after the last epoch and says so; every evaluation
#     (every K steps and each epoch's end) is in evals/;
#  3. a run with a schedule, warm-up, weight decay, Nesterov and augmentation, stopped at a
#     checkpoint mid-schedule and resumed, ends bitwise equal to the uninterrupted run;
#  4. augmentation does not depend on N: with --global-batch fixed, 1 and 2 ranks train the same
#     samples and land within 1e-5 (relative to each tensor's largest value) of each other.
# usage: time_to_accuracy.sh <cifar_mpi> <source dir> <data dir (ignored)>
set -u
bin=$(realpath "$1"); src="$2"
source "$src/tests/cli/common.bash"
PY=$(python_with h5py numpy)
[[ -n $PY ]] || { echo "SKIP: no python3 with h5py and numpy"; exit 77; }
tmp=$(mktemp -d); trap 'pkill -9 -f "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
"$PY" "$src/tests/cli/make_fake_cifar.py" data 128
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=1
mpi() { local np=$1; shift; timeout 300 mpirun -np "$np" --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 "$bin" \
  --data-dir "$tmp/data" --threads 1 --log-every 1000 "$@"; }

# 1. 640 images, 2 ranks x 32: 10 steps an epoch; the first evaluation (step 3) reaches 1%.
mpi 2 --batch-size 32 --epochs 3 --eval-every 3 --target-accuracy 0.01 --metrics m1.h5 >r1.out 2>&1
rc=$?
if [[ $rc -eq 0 ]] && grep -q "target 1.00% reached at step 3 " r1.out && "$PY" - m1.h5 >c1.txt 2>&1 <<'PY'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    s = f["summary"].attrs
    assert list(f["evals/step"][()]) == [3], f["evals/step"][()]
    assert abs(f["evals/epoch"][0] - 0.3) < 1e-12
    assert int(s["target_reached"]) == 1 and int(s["steps_to_target"]) == 3
    assert s["time_to_target"] >= s["time_to_target_train"] > 0, (s["time_to_target"], s["time_to_target_train"])
    assert abs(f.attrs["target_accuracy"] - 0.01) < 1e-12
    assert f["steps/t_comp"].shape[0] == 3, f["steps/t_comp"].shape
print("evals at step 3, stopped there")
PY
then pass "target reached at the first evaluation: every rank stops after step 3, exit 0 ($(cat c1.txt))"
else fail "target reached at step 3 (exit $rc)" "$(grep -m3 -E 'target|error' r1.out)" "$(tail -n 3 c1.txt 2>/dev/null)"; fi

# 2. never reached: 2 epochs of 10 steps, evaluations at global steps 4, 8, 10 (epoch end), 12, 16, 20.
mpi 2 --batch-size 32 --epochs 2 --eval-every 4 --target-accuracy 0.99 --metrics m2.h5 >r2.out 2>&1
rc=$?
if [[ $rc -eq 0 ]] && grep -q "not reached in 20 step(s)" r2.out && grep -q "not reached" r2.out &&
   "$PY" - m2.h5 >c2.txt 2>&1 <<'PY'
import sys, math, h5py
with h5py.File(sys.argv[1], "r") as f:
    s = f["summary"].attrs
    assert list(f["evals/step"][()]) == [4, 8, 10, 12, 16, 20], f["evals/step"][()]
    w, t = f["evals/wall"][()], f["evals/train_time"][()]
    assert all(w[i] < w[i + 1] for i in range(len(w) - 1)) and all(t <= w)
    assert int(s["target_reached"]) == 0 and math.isnan(s["time_to_target"]) and int(s["steps_to_target"]) == -1
    assert list(f["epochs/epoch"][()]) == [1, 2]
print("6 evaluations, no target")
PY
then pass "target never reached: all 20 steps, exit 0, says so ($(cat c2.txt))"
else fail "target never reached (exit $rc)" "$(tail -n 3 r2.out)" "$(tail -n 3 c2.txt 2>/dev/null)"; fi

# 3. resume mid-schedule: 4 epochs x 10 steps with every policy option; stop at step 13.
policy=(--batch-size 32 --epochs 4 --no-eval --lr 0.05 --lr-schedule cosine --warmup-epochs 1.5 --lr-scaling linear
        --weight-decay 5e-4 --nesterov --augment crop-flip)
mpi 2 "${policy[@]}" --save-weights full.h5 --metrics m3.h5 >r3.out 2>&1 &&
mpi 2 "${policy[@]}" --max-steps 13 --checkpoint ck.h5 --metrics m3a.h5 >r3a.out 2>&1 &&
mpi 2 "${policy[@]}" --resume ck.h5 --checkpoint ck2.h5 --save-weights resumed.h5 --metrics m3b.h5 >r3b.out 2>&1
rc=$?
if [[ $rc -eq 0 ]] && "$PY" - full.h5 resumed.h5 >c3.txt 2>&1 <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
for k in a:
    assert np.array_equal(a[k][()].view(np.uint32), b[k][()].view(np.uint32)), k
print(f"{len(list(a))} tensors bitwise equal")
PY
then pass "stopped at step 13 of a warm-up + cosine schedule with augmentation, resumed: $(cat c3.txt)"
else fail "resume mid-schedule bitwise (exit $rc)" "$(tail -n 2 r3.out r3a.out r3b.out 2>/dev/null)" "$(cat c3.txt 2>/dev/null)"; fi

# 4. the same samples, augmented the same way, whatever N: global batch 64 on 1 and 2 ranks.
same=(--global-batch 64 --epochs 1 --no-eval --lr 0.05 --lr-schedule onecycle --augment crop-flip)
mpi 1 "${same[@]}" --save-weights n1.h5 --metrics m4a.h5 >r4a.out 2>&1 &&
mpi 2 "${same[@]}" --save-weights n2.h5 --metrics m4b.h5 >r4b.out 2>&1
rc=$?
if [[ $rc -eq 0 ]] && "$PY" - n1.h5 n2.h5 >c4.txt 2>&1 <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
worst = max(float(np.abs(a[k][()] - b[k][()]).max() / np.abs(a[k][()]).max()) for k in a)
assert worst < 1e-5, worst
# and augmentation matters: the same run without it lands elsewhere
print(f"largest relative difference {worst:.2e}")
PY
then pass "augmented training is the same on 1 and 2 ranks at a fixed global batch: $(cat c4.txt)"
else fail "augmentation independent of N (exit $rc)" "$(tail -n 2 r4a.out r4b.out)" "$(cat c4.txt 2>/dev/null)"; fi

# 5. the two recipes are valid configuration files (one step each on the fake set), and the
# start-up log names the lr their linear scaling makes at N = 2 (a global batch of 256).
declare -A scaled=([time_to_accuracy]="lr 0.05 scaled linear x2 (global batch 256 / 128) = 0.1"
                   [best_accuracy]="lr 0.04 scaled linear x2 (global batch 256 / 128) = 0.08")
for recipe in time_to_accuracy best_accuracy; do
  mpi 2 --config "$src/config/$recipe.toml" --max-steps 1 --metrics "r_$recipe.h5" \
    >"r_$recipe.out" 2>&1
  rc=$?
  if [[ $rc -eq 0 ]] && grep -q "policy: lr" "r_$recipe.out" && grep -qF -- "] ${scaled[$recipe]}" "r_$recipe.out"
  then pass "config/$recipe.toml runs: ${scaled[$recipe]}"
  else fail "config/$recipe.toml runs (exit $rc)" "$(grep -m2 'scaled\|policy' "r_$recipe.out")" "$(tail -n 3 "r_$recipe.out")"; fi
done

if ((failures)); then echo "time_to_accuracy: $failures case(s) failed"; exit 1; fi
echo "time_to_accuracy: all cases passed"
