#!/usr/bin/env bash
# The all-reduces under SimGrid SMPI (tools/smpi_allreduce.sh on platforms from
# cifar_tools.smpi_platform), in well under a minute once built:
#   - N = 64 on a flat cluster (27 us, 10 Gbit/s), 1 MiB: ring and rhd both give exact sums (the
#     bench's check column "ok") and rhd is faster than the ring (12 latency terms against 126);
#   - N = 12, not a power of two (4 ranks fold into partners), 4 KiB..64 KiB: rhd and mpi exact;
#   - the platform generator: a two-level platform of 3 hosts x 4 cores gives a 12-line hostfile,
#     each host 4 times, and --np 5 its first 5 lines.
#   bash tests/cli/smpi_allreduce.sh <cifar_mpi binary> <source dir> <data dir (unused)>
# Builds <build dir>/smpi (tools/smpi/CMakeLists.txt, with smpicxx) if needed. Exits 77 (skip)
# when smpicxx/smpirun are absent (apt-get install libsimgrid-dev: tools/install_deps.sh).
set -u

BIN=${1:?usage: smpi_allreduce.sh <cifar_mpi> <source dir> <data dir>}
SRC=$(realpath "${2:?usage: smpi_allreduce.sh <cifar_mpi> <source dir> <data dir>}")
source "$SRC/tests/cli/common.bash"
if ! command -v smpicxx >/dev/null || ! command -v smpirun >/dev/null; then
  echo "SKIP: SimGrid's smpicxx/smpirun not found (apt-get install libsimgrid-dev)"
  exit 77
fi
PY=$(python_with csv)
[[ -n $PY ]] || { echo "SKIP: no python3"; exit 77; }
export CIFAR_SMPI_BUILD="$(dirname "$(realpath "$BIN")")/smpi"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# Built every time (incrementally: seconds when nothing changed), so that a binary left from an
# older tree never hides a source that no longer builds; one test at a time (flock), as
# scaling_model.sh builds the same folder.
if ! { flock "$CIFAR_SMPI_BUILD.lock" cmake -S "$SRC/tools/smpi" -B "$CIFAR_SMPI_BUILD" -DCMAKE_BUILD_TYPE=Release >"$TMP/build.log" 2>&1 &&
       flock "$CIFAR_SMPI_BUILD.lock" cmake --build "$CIFAR_SMPI_BUILD" -j 2 >>"$TMP/build.log" 2>&1; }; then
  fail "build the SMPI allreduce_bench" "$(tail -5 "$TMP/build.log")"
  exit 1
fi
pass "SMPI allreduce_bench built in $CIFAR_SMPI_BUILD"

# column VALUE of CSV's only data row
col() { "$PY" -c 'import csv,sys; print(list(csv.DictReader(open(sys.argv[1])))[-1][sys.argv[2]])' "$1" "$2"; }

PYTHONPATH="$SRC/tools" "$PY" -m cifar_tools.smpi_platform flat --hosts 64 --alpha-us 27 --gbps 10 -o "$TMP/flat64.xml"
start=$SECONDS
if timeout 120 "$SRC/tools/smpi_allreduce.sh" --np 64 --platform "$TMP/flat64.xml" --out "$TMP/n64.csv" -- \
     --algorithms ring,rhd --min-bytes 1048576 --max-bytes 1048576 >"$TMP/n64.log" 2>&1; then
  ring=$(col "$TMP/n64.csv" ring_time_us) rhd=$(col "$TMP/n64.csv" rhd_time_us) check=$(col "$TMP/n64.csv" check)
  if [[ $check == ok ]]; then pass "N=64 ring and rhd exact ($((SECONDS - start)) s)"
  else fail "N=64 ring and rhd exact" "check column: $check"; fi
  if "$PY" -c "import sys; sys.exit(0 if float('$rhd') < float('$ring') else 1)"; then
    pass "N=64 1 MiB: rhd $rhd us < ring $ring us"
  else
    fail "N=64 1 MiB: rhd faster than ring" "rhd $rhd us, ring $ring us"
  fi
else
  fail "N=64 smpirun" "$(tail -5 "$TMP/n64.log")"
fi

PYTHONPATH="$SRC/tools" "$PY" -m cifar_tools.smpi_platform flat --hosts 12 -o "$TMP/flat12.xml"
if timeout 60 "$SRC/tools/smpi_allreduce.sh" --np 12 --platform "$TMP/flat12.xml" --out "$TMP/n12.csv" -- \
     --algorithms rhd,mpi --min-bytes 4096 --max-bytes 65536 >"$TMP/n12.log" 2>&1 &&
   [[ $(cut -d, -f10 "$TMP/n12.csv" | tail -n +2 | sort -u) == ok ]]; then
  pass "N=12 (not a power of two) rhd and mpi exact, 4 KiB..64 KiB"
else
  fail "N=12 rhd and mpi exact" "$(tail -3 "$TMP/n12.log")" "$(cat "$TMP/n12.csv" 2>/dev/null)"
fi

PYTHONPATH="$SRC/tools" "$PY" -m cifar_tools.smpi_platform two-level --hosts 3 --cores 4 -o "$TMP/two.xml"
all=$(PYTHONPATH="$SRC/tools" "$PY" -m cifar_tools.smpi_platform hostfile "$TMP/two.xml" | sort | uniq -c | awk '{print $1 $2}' | tr '\n' ' ')
five=$(PYTHONPATH="$SRC/tools" "$PY" -m cifar_tools.smpi_platform hostfile "$TMP/two.xml" --np 5 | tr '\n' ' ')
if [[ $all == "4node-0 4node-1 4node-2 " && $five == "node-0 node-0 node-0 node-0 node-1 " ]]; then
  pass "two-level platform: 3 hosts x 4 cores hostfile"
else
  fail "two-level platform hostfile" "all: $all" "--np 5: $five"
fi

[[ $failures -eq 0 ]] || exit 1
