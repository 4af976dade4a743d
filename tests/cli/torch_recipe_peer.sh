#!/usr/bin/env bash
# The PyTorch peer of the training recipe (tools/cifar_tools/torch_recipe_peer.py), held to the
# program: from the same initial weights, with the records in file order and no augmentation, one
# epoch of SimpleCNN (batch 48 of 640 records: 14 steps, the last one of 16) under the cosine
# schedule with momentum and weight decay must end where cifar_mpi's same epoch ends, every tensor
# within 1e-4 of its largest magnitude (a schedule, weight decay or last-batch difference moves
# them by 1e-2 and more). Then the peer's one-line errors: a missing weights file, one of the
# other model.
#   bash tests/cli/torch_recipe_peer.sh <cifar_mpi binary> <source dir> <data dir (ignored)>
# Exits 1 if a case failed, 77 (skip) without a python3 with torch, h5py and numpy.
set -u
BIN=$(realpath "${1:?usage: torch_recipe_peer.sh <cifar_mpi> <source dir> <data dir>}")
SRC=$(realpath "${2:?usage: torch_recipe_peer.sh <cifar_mpi> <source dir> <data dir>}")
source "$SRC/tests/cli/common.bash"
# PyTorch, the temporary folder, 5 files x 128 random records in $DATA, SimpleCNN's initial weights in $INIT
against_torch_setup torch_recipe_peer
RECIPE=(--epochs 1 --lr 0.05 --lr-schedule cosine --momentum 0.9 --weight-decay 5e-4 --augment none)
peer() { env PYTHONPATH="$SRC/tools" "$PY" -m cifar_tools.torch_recipe_peer "$@"; }

timeout 300 "$BIN" --data-dir "$DATA" --init-weights "$INIT" --no-shuffle --batch-size 48 --threads 1 \
  "${RECIPE[@]}" --save-weights ours.h5 >ours.out 2>ours.err
rc=$?
((rc == 0)) || fail "cifar_mpi: exit $rc" "$(tail -n 3 ours.err)"
timeout 300 env PYTHONPATH="$SRC/tools" "$PY" -m cifar_tools.torch_recipe_peer --model simplecnn --data "$DATA" \
  --init-weights "$INIT" --no-shuffle --batch 48 "${RECIPE[@]}" --save-weights peer.h5 >peer.out 2>peer.err
rc=$?
if ((rc)); then
  fail "peer: exit $rc" "$(tail -n 3 peer.err)"
elif [[ $(grep -c '"epoch": 1' peer.out) != 1 || $(grep -c '"final_accuracy"' peer.out) != 1 ]]; then
  fail "peer: not one line for epoch 1 and one final line" "$(head -n 3 peer.out)"
elif verdict=$("$PY" - ours.h5 peer.h5 <<'PYEOF' 2>&1
import sys
import h5py
import numpy as np
with h5py.File(sys.argv[1], "r") as ours, h5py.File(sys.argv[2], "r") as peer:
    names = sorted(peer.keys())
    worst = ("", 0.0)
    for k in names:
        a, b = np.asarray(ours[k][()], dtype=np.float64), np.asarray(peer[k][()], dtype=np.float64)
        if a.shape != b.shape:
            sys.exit(f"{k}: shape {a.shape} against the peer's {b.shape}")
        rel = float(np.max(np.abs(a - b))) / max(float(np.max(np.abs(b))), 1e-3)
        worst = max(worst, (k, rel), key=lambda t: t[1])
    if worst[1] > 1e-4:
        sys.exit(f"{worst[0]} differs by {worst[1]:.2e} of its largest magnitude (allowed 1e-4)")
    print(f"{len(names)} tensors, largest difference {worst[1]:.1e} of the magnitude ({worst[0]})")
PYEOF
); then
  pass "one epoch, file order, cosine, momentum, weight decay, last batch short: the peer lands on cifar_mpi's weights: $verdict"
else
  fail "peer against cifar_mpi" "$verdict"
fi

# one_line_error NAME NEEDLE ARGS...: the peer exits non-zero with one stderr line containing NEEDLE.
one_line_error() {
  local name=$1 needle=$2
  shift 2
  peer --data "$DATA" --epochs 1 "$@" >err.out 2>err.txt
  local rc=$?
  if ((rc == 0)) || [[ $(wc -l <err.txt) != 1 ]] || ! grep -qF -- "$needle" err.txt; then
    fail "$name: exit $rc, want one line naming '$needle'" "$(head -n 3 err.txt)"
  else
    pass "$name: $(cat err.txt)"
  fi
}
one_line_error "missing weights file" "nowhere.h5" --model simplecnn --init-weights nowhere.h5
one_line_error "weights of the other model" "conv1.weight" --model resnet20 --init-weights "$INIT"
one_line_error "missing data folder" "nowhere/data_batch_1.bin" --model simplecnn --data nowhere
((failures == 0))
