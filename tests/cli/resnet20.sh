#!/usr/bin/env bash
# --model resnet20 end to end, on a small fake data set:
#  1. 2 ranks, 6 steps: a run stopped at step 3 by its checkpoint and resumed ends with weights and
#     BatchNorm running statistics bitwise equal to the uninterrupted run's;
#  2. the weights file holds PyTorch's state_dict names, running statistics included;
#  3. a checkpoint of the other model is refused in one line naming the model; an unknown model
#     is refused in one line listing the known ones;
#  4. evaluation runs in inference mode and reports an accuracy.
# usage: resnet20.sh <cifar_mpi> <source dir> <data dir (ignored)>
set -u
bin=$(realpath "$1"); src=$(realpath "$2")
tmp=$(mktemp -d); trap '[[ -z "${KEEP_TMP:-}" ]] && rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
source "$src/tests/cli/common.bash"
command -v h5dump >/dev/null || { echo "SKIP: h5dump (hdf5-tools) not installed"; exit 77; }
python3 "$src/tests/cli/make_fake_cifar.py" data 64  # 320 training images
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=1
mpi=(mpirun -np 2 --oversubscribe --bind-to none)
args=(--model resnet20 --data-dir "$tmp/data" --batch-size 16 --epochs 10 --no-eval --threads 1 --log-every 1)
dump() { h5dump -d "$2" "$1" 2>/dev/null | tail -n +3; }
same() { [[ -s $1 && -s $2 ]] && for d in /conv1.weight /layer3.2.bn2.running_var /layer2.0.bn1.running_mean /fc.bias; do
           [[ -n $(dump "$1" "$d") ]] && cmp -s <(dump "$1" "$d") <(dump "$2" "$d") || return 1; done; }

"${mpi[@]}" "$bin" "${args[@]}" --max-steps 6 --save-weights full.h5 >full.log 2>&1 || fail "uninterrupted run" "$(tail -n 3 full.log)"
"${mpi[@]}" "$bin" "${args[@]}" --max-steps 3 --checkpoint c.h5 >a.log 2>&1 || fail "first half" "$(tail -n 3 a.log)"
"${mpi[@]}" "$bin" "${args[@]}" --max-steps 6 --resume c.h5 --save-weights resumed.h5 >b.log 2>&1 ||
  fail "resumed half" "$(tail -n 3 b.log)"
if same full.h5 resumed.h5; then
  pass "2 ranks, stopped at step 3 and resumed: weights and running statistics bitwise equal to 6 steps in one go"
else
  fail "resumed run differs from the uninterrupted one (weights or running statistics)"
fi

names=$(h5dump -n full.h5 | awk '$1 == "dataset" {print $2}' | sort)
count=$(wc -l <<<"$names")
if ((count == 97)) && grep -qx "/layer3.2.bn2.running_var" <<<"$names" && grep -qx "/fc.bias" <<<"$names"; then
  pass "weights file: 97 datasets (59 parameters, 38 running statistics) under PyTorch's names"
else
  fail "weights file: $count datasets" "$(head -n 5 <<<"$names")"
fi

"$bin" --data-dir "$tmp/data" --batch-size 16 --no-eval --threads 1 --max-steps 1 --checkpoint s.h5 >s.log 2>&1
out=$("$bin" "${args[@]}" --max-steps 2 --resume s.h5 2>&1); rc=$?
line=$(grep -m1 "error" <<<"$out")
[[ $rc -ne 0 ]] && grep -q "model = SimpleCNN, this run has model = resnet20" <<<"$line" &&
  pass "a simplecnn checkpoint is refused by --model resnet20: $line" || fail "resume across models: exit $rc" "$line"
out=$("$bin" --model resnet56 --data-dir "$tmp/data" 2>&1); rc=$?
[[ $rc -ne 0 ]] && grep -q "resnet56" <<<"$out" && grep -q "simplecnn" <<<"$out" && grep -q "resnet20" <<<"$out" &&
  pass "--model resnet56 refused: $(head -n 1 <<<"$out")" || fail "--model resnet56: exit $rc" "$out"

out=$("$bin" --model resnet20 --data-dir "$tmp/data" --batch-size 32 --threads 1 --max-steps 4 2>&1); rc=$?
acc=$(grep -m1 "final test accuracy" <<<"$out")
[[ $rc -eq 0 && -n $acc ]] && pass "evaluation: $acc" || fail "evaluation: exit $rc" "$(tail -n 3 <<<"$out")"
((failures == 0))
