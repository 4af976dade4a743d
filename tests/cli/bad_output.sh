#!/usr/bin/env bash
# The program when its output cannot be written: a read-only folder, a full disk, a file size
# limit, for each output file (metrics, checkpoint, weights, trace). Each case must exit 1
# (not a crash), promptly (timeout 60 s), with exactly one stderr line "cifar_mpi: error: ..."
# naming the file and the reason, and leave no file under the final name and no temporary file;
# a checkpoint that no longer fits leaves the previous one intact. With 2 ranks a failed write on
# rank 0 ends both ranks within 30 s, with either --balance.
# Read-only and full file systems are small tmpfs mounts (root ignores permission bits, so a
# chmod would not do); where mounting is not permitted those cases are skipped with a message.
#   bash tests/cli/bad_output.sh <cifar_mpi binary> <source dir> <data dir (ignored)>
set -u

BIN=${1:?usage: bad_output.sh <cifar_mpi> <source dir> <data dir>}
BIN=$(realpath "$BIN")
SRC=${2:?usage: bad_output.sh <cifar_mpi> <source dir> <data dir>}
[[ -x $BIN ]] || { echo "FAIL: $BIN is not an executable"; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cifar_bad_output.XXXXXX")
MOUNTS=()
cleanup() {
  local m
  for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT
cd "$TMP" || exit 1
export OMP_NUM_THREADS=1
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
source "$SRC/tests/cli/common.bash"
PYPLAIN=$(command -v python3 || command -v /usr/bin/python3)
"$PYPLAIN" "$SRC/tests/cli/make_fake_cifar.py" "$TMP/data" 100 >/dev/null || { echo "FAIL: making fake data"; exit 1; }
COMMON=(--data-dir "$TMP/data" --batch-size 32 --no-eval --threads 1)

# mount_tmpfs DIR OPTIONS: a tmpfs at DIR (created); fails if mounting is not permitted.
mount_tmpfs() {
  mkdir -p "$1"
  mount -t tmpfs -o "$2" tmpfs "$1" 2>/dev/null || return 1
  MOUNTS+=("$1")
}

RUNNER=()  # a command the binary runs under (e.g. a ulimit), none by default
WANT_RC=1  # expect_error (common.bash): a refused output file is exit code 1 exactly

# expect_only DIR NAME... : DIR holds exactly these names (no half-written or temporary file).
expect_only() {
  local dir=$1 want have
  shift
  want=$( (($#)) && printf '%s\n' "$@" | sort | tr '\n' ' ')
  have=$(ls -A "$dir" | sort | tr '\n' ' ')
  if [[ $have == "$want" ]]; then
    pass "  ... and $dir holds only: ${want:-nothing}"
  else
    fail "  ... $dir holds '$have', want '${want:-nothing}'"
  fi
}

# --- read-only folder: refused at start-up, before any training step -------------------------
RO="$TMP/ro"
if mount_tmpfs "$RO" ro,size=1m; then
  for opt in --metrics --save-weights --checkpoint --trace; do
    file="$RO/out.h5"
    metrics=(--metrics "$TMP/m_ro$run.h5")
    [[ $opt == --metrics ]] && metrics=()
    if expect_error "$opt in a read-only folder" "$file" "not writable" -- "${metrics[@]}" "$opt" "$file" --max-steps 1; then
      grep -q "step" "$TMP/case$run.out" && fail "  ... $opt: training started before the refusal"
    fi
  done
  expect_only "$RO"
else
  echo "SKIP: read-only folder cases (mount -t tmpfs not permitted here)"
fi

# --- a folder where a file is meant, and two outputs under one name: refused at start-up ------
mkdir -p "$TMP/afolder"
for opt in --save-weights --checkpoint --trace; do
  if expect_error "$opt naming a folder" "$opt $TMP/afolder" "is a folder" -- \
       --metrics "$TMP/m_dir$run.h5" "$opt" "$TMP/afolder" --max-steps 1; then
    grep -q "step" "$TMP/case$run.out" && fail "  ... $opt: training started before the refusal"
  fi
done
expect_error "--save-weights and --checkpoint naming one file" "--save-weights and --checkpoint both name" -- \
  --metrics "$TMP/m_same.h5" --save-weights "$TMP/same.h5" --checkpoint "$TMP/./same.h5" --max-steps 1
expect_error "--save-weights naming the metrics file" "--save-weights and --metrics both name" -- \
  --metrics "$TMP/m_same2.h5" --save-weights "$TMP/m_same2.h5" --force --max-steps 1
expect_only "$TMP/afolder"

# --- full disk: a 64 KB tmpfs (the weights are 1.2 MB, a checkpoint 2.5 MB) ------------------
FULL="$TMP/full"
if mount_tmpfs "$FULL" size=64k; then
  expect_error "--save-weights on a full disk" "$FULL/w.h5" "No space left on device" -- \
    --metrics "$TMP/m_full1.h5" --max-steps 1 --save-weights "$FULL/w.h5"
  expect_only "$FULL"
  expect_error "--checkpoint on a full disk" "$FULL/c.h5" "No space left on device" -- \
    --metrics "$TMP/m_full2.h5" --max-steps 2 --checkpoint "$FULL/c.h5" --checkpoint-every 1
  expect_only "$FULL"
  # The metrics file is a few tens of KB: fill the disk but for 4 KB.
  head -c $((60 * 1024)) /dev/zero >"$FULL/filler" 2>/dev/null
  expect_error "--metrics on a full disk" "$FULL/m.h5" "No space left on device" -- \
    --metrics "$FULL/m.h5" --max-steps 2
  expect_only "$FULL" filler
  rm -f "$FULL/filler"
else
  echo "SKIP: full disk cases (mount -t tmpfs not permitted here)"
fi

# --- a checkpoint that no longer fits: the previous one stays, intact ------------------------
ROOM="$TMP/room"
if mount_tmpfs "$ROOM" size=4m; then
  if timeout 60 "$BIN" "${COMMON[@]}" --metrics "$TMP/m_room1.h5" --max-steps 2 --checkpoint "$ROOM/c.h5" \
       >"$TMP/room1.out" 2>&1 && [[ -s $ROOM/c.h5 ]]; then
    before=$(md5sum <"$ROOM/c.h5")
    # the next one (2.5 MB) does not fit beside it (4 MB)
    expect_error "checkpoint update on a full disk" "$ROOM/c.h5" "No space left on device" -- \
      --metrics "$TMP/m_room2.h5" --max-steps 4 --resume "$ROOM/c.h5" --checkpoint "$ROOM/c.h5" --checkpoint-every 1
    expect_only "$ROOM" c.h5
    if [[ $(md5sum <"$ROOM/c.h5") == "$before" ]]; then
      pass "  ... and the previous checkpoint is unchanged"
    else
      fail "  ... the previous checkpoint was changed"
    fi
  else
    fail "writing a first checkpoint to $ROOM" "$(tail -n 3 "$TMP/room1.out")"
  fi
else
  echo "SKIP: checkpoint update on a full disk (mount -t tmpfs not permitted here)"
fi

# --- a file size limit (ulimit -f): EFBIG, not death by SIGXFSZ -------------------------------
LIM="$TMP/limit"
mkdir -p "$LIM"
# 512 KB: the metrics file fits, the weights do not. PMIX_MCA_gds=hash: the singleton's PMIx
# would otherwise put its (larger) shared-memory store in files, and MPI_Init would fail first.
RUNNER=(env PMIX_MCA_gds=hash bash -c 'ulimit -f 512 && exec "$@"' ulimit)
expect_error "--save-weights beyond ulimit -f" "$LIM/w.h5" "File too large" -- \
  --metrics "$LIM/m.h5" --max-steps 1 --save-weights "$LIM/w.h5"
expect_only "$LIM" m.h5
RUNNER=()

# --- with 2 ranks: rank 0's failed write ends both ranks ---------------------------------------
# Also with --balance dynamic, whose shared-memory window must not be freed (a collective that
# would wait for the other rank forever) while rank 0 unwinds from its error.
if ((${#MOUNTS[@]})) && [[ -d $FULL ]] && mountpoint -q "$FULL" && command -v mpirun >/dev/null 2>&1; then
  for balance in static dynamic; do
    run=$((run + 1))
    start=$SECONDS
    what="mpirun -np 2 --balance $balance --checkpoint on a full disk"
    timeout 30 mpirun -np 2 --oversubscribe --bind-to none "$BIN" "${COMMON[@]}" --metrics "$TMP/m_mpi_$balance.h5" \
      --max-steps 3 --checkpoint "$FULL/c.h5" --checkpoint-every 1 --balance "$balance" >"$TMP/mpi.out" 2>"$TMP/mpi.err"
    rc=$? took=$((SECONDS - start))
    line=$(grep -m1 '^cifar_mpi: error' "$TMP/mpi.err")
    if [[ $rc -eq 124 ]]; then
      fail "$what: ranks still running after 30 s"
    elif [[ $rc -eq 0 ]] || ! grep -qF "cannot write checkpoint $FULL/c.h5" <<<"$line"; then
      fail "$what: exit $rc" "$(head -n 5 "$TMP/mpi.err")"
    else
      pass "$what (exit $rc, ${took}s): $line"
    fi
    expect_only "$FULL"
  done
fi

if ((failures)); then
  echo "bad_output: $failures case(s) failed"
  exit 1
fi
echo "bad_output: all cases passed"
exit 0
