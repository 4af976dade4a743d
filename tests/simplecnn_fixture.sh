#!/usr/bin/env bash
# The set-up of the PyTorch fixture (ctest's test fixture.simplecnn, which runs before the tests
# that read simplecnn_steps.h5; tests/CMakeLists.txt). Those tests read SHARED (the copy beside
# the checkout) when it is there, else OUT in the build folder: this writes OUT with
# cifar_tools.make_simplecnn_fixture unless SHARED is there or OUT is newer than the code that
# writes it. Without a python3 that has torch, h5py and numpy it skips (exit 77), and so do the
# tests, saying how to get it.
#   bash tests/simplecnn_fixture.sh <source dir> <SHARED> <OUT>
set -u
SRC=${1:?usage: simplecnn_fixture.sh <source dir> <shared fixture> <fixture to make>}
SHARED=${2:?} OUT=${3:?}
source "$SRC/tests/cli/common.bash"  # python_with

if [[ -f $SHARED ]]; then
  echo "fixture.simplecnn: the tests read $SHARED"
  exit 0
fi
made_by=("$SRC"/tools/cifar_tools/{make_simplecnn_fixture,reference_cnn,h5files}.py)
fresh=1
for f in "${made_by[@]}"; do [[ $OUT -nt $f ]] || fresh=0; done
if ((fresh)); then
  echo "fixture.simplecnn: the tests read $OUT (made by PyTorch earlier)"
  exit 0
fi
PY=$(python_with torch h5py numpy)
if [[ -z $PY ]]; then
  echo "SKIP: no python3 with torch, h5py and numpy to make $OUT, and no $SHARED" \
       "(Debian: apt-get install python3-torch, or tools/install_deps.sh --tests)"
  exit 77
fi
mkdir -p "$(dirname "$OUT")" || exit 1
PYTHONPATH="$SRC/tools" "$PY" -m cifar_tools.make_simplecnn_fixture "$OUT"
