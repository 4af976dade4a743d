#!/usr/bin/env bash
# --compress powersgd and --local-sgd end to end on 2 ranks with a small fake data set:
#  1. PowerSGD stopped at a checkpoint and resumed ends bitwise equal to an uninterrupted run
#     (Q and every rank's error are in the checkpoint), at a step after compression started and
#     at one before; with --overlap as well;
#  2. the metrics file's bytes per step: the plain steps send the whole gradient, the compressed
#     ones over 20x fewer;
#  3. the start-up forecast is logged, and on this (fast, local) link the one-line warning that
#     compression is predicted to slow the step;
#  4. local SGD runs, averages the weights every K steps (one call each) and sends nothing between;
#  5. a --link-model file is read on rank 0 alone (rank 1 runs where there is no such file, as on a
#     node without it) and the forecast is the file's: on its slow link compression pays.
# usage: send_less.sh <cifar_mpi> <source dir> <data dir (ignored)>
set -u
bin=$(realpath "$1"); src="$2"
tmp=$(mktemp -d); trap '[[ -z "${KEEP_TMP:-}" ]] && rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
python3 "$src/tests/cli/make_fake_cifar.py" data 128
[[ $(id -u) -eq 0 ]] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_NUM_THREADS=1
mpi=(mpirun -np 2 --oversubscribe --bind-to none --mca mpi_yield_when_idle 1)
args=(--data-dir "$tmp/data" --batch-size 32 --epochs 100 --no-eval --log-every 1 --threads 1 --balance static)
run() { "${mpi[@]}" "$bin" "${args[@]}" "$@"; }
fail=0
ok() { echo "PASS $1"; }
bad() { echo "FAIL $1"; [[ -f "${2:-}" ]] && sed 's/^/      /' "$2" | tail -n 8; fail=1; }
same_weights() { [[ -s "$1" && -s "$2" ]] && cmp -s <(h5dump -d /conv1.weight -d /fc1.weight -d /fc2.weight -d /fc2.bias "$1" | tail -n +3) \
                        <(h5dump -d /conv1.weight -d /fc1.weight -d /fc2.weight -d /fc2.bias "$2" | tail -n +3); }
command -v h5dump >/dev/null || { echo "SKIP: h5dump (hdf5-tools) not installed"; exit 77; }

# 1. Resume, bitwise: compression from step 4; checkpoints after step 6 (compressing) and 2 (not yet).
for overlap in --no-overlap --overlap; do
  psgd=(--compress powersgd --compress-rank 2 --compress-start 4 $overlap)
  run "${psgd[@]}" --max-steps 16 --save-weights full$overlap.h5 --metrics full$overlap.metrics.h5 >full$overlap.log 2>&1 ||
    bad "uninterrupted run $overlap" full$overlap.log
  for stop in 6 2; do
    run "${psgd[@]}" --max-steps $stop --checkpoint c$stop.h5 --checkpoint-every $stop >part.log 2>&1 || bad "first part" part.log
    run "${psgd[@]}" --max-steps 16 --resume c$stop.h5 --save-weights resumed$stop.h5 >resume.log 2>&1 || bad "resume" resume.log
    same_weights full$overlap.h5 resumed$stop.h5 &&
      ok "PowerSGD $overlap: resume after step $stop is bitwise equal to the uninterrupted run" ||
      bad "PowerSGD $overlap: resumed after step $stop, weights differ" resume.log
  done
done
plain_weights() { run --max-steps 16 --save-weights plain.h5 >plain.log 2>&1; }
plain_weights && ! same_weights plain.h5 full--no-overlap.h5 && ok "compressed weights differ from plain ones" ||
  bad "compression changed nothing" plain.log

# 2. Bytes per step from the metrics file.
/usr/bin/python3 - full--no-overlap.metrics.h5 <<'PY' && ok "bytes per step: plain steps whole, compressed >= 20x fewer" || fail=1
import sys, h5py
with h5py.File(sys.argv[1]) as f:
    steps = f["steps"]
    b = steps["comm_bytes"][:] if "comm_bytes" in steps else None
    if b is None:
        print("FAIL no steps/comm_bytes in the metrics file"); sys.exit(1)
    b = b[:, 0]
    plain, compressed = b[:4], b[4:16]
    if not (plain.min() == plain.max() == 315722 * 4):
        print("FAIL plain steps sent", plain); sys.exit(1)
    if not (compressed.max() * 20 <= plain[0] and compressed.min() > 0):
        print("FAIL compressed steps sent", compressed); sys.exit(1)
    print("      plain", plain[0], "B, compressed", compressed[0], "B:", round(plain[0] / compressed[0], 1), "x")
PY

# 3. The forecast, and the warning where it predicts a slower step.
grep -q "PowerSGD rank 2 forecast: all-reduce per step" full--no-overlap.log && ok "forecast logged" ||
  bad "no forecast line" full--no-overlap.log
if grep -q "compression pays below" full--no-overlap.log; then
  n=$(grep -c "is predicted to make the step slower" full--no-overlap.log)
  slower=$(grep -o "[0-9.]* ms plain, [0-9.]* ms compressed" full--no-overlap.log | awk '{print ($4 > $1)}')
  [[ $slower -eq 1 && $n -eq 1 || $slower -eq 0 && $n -eq 0 ]] && ok "warning exactly where the forecast is slower ($n)" ||
    bad "warning lines $n, forecast slower $slower" full--no-overlap.log
fi

# 5. The link model from rank 0's file: rank 1's working folder has none. A ring of 1 ms and
#    10 MB/s: the forecast's plain all-reduce takes over 100 ms, compression pays, no warning.
mkdir -p r0 r1 && printf 'ring 1e-3 1e-7 ring\n' >r0/link.txt
file_args=("$bin" "${args[@]}" --compress powersgd --compress-rank 2 --allreduce ring --bucket-mb 1 --link-model link.txt
           --max-steps 2)
mpirun --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 -np 1 -wdir "$tmp/r0" "${file_args[@]}" : \
  -np 1 -wdir "$tmp/r1" "${file_args[@]}" >file.log 2>&1 || bad "--link-model on rank 0 only" file.log
plain_ms=$(grep -o "[0-9.]* ms plain" file.log | head -n 1 | cut -d' ' -f1)
[[ -n $plain_ms ]] && awk -v p="$plain_ms" 'BEGIN { exit !(p > 100) }' && ! grep -q "predicted to make the step slower" file.log &&
  ok "--link-model read on rank 0 only; the forecast is the file's ($plain_ms ms plain)" ||
  bad "--link-model on rank 0 only: forecast not the file's" file.log

# 4. Local SGD: average every 3 steps from step 4.
run --local-sgd 3 --local-sgd-start 4 --max-steps 16 --metrics local.h5 --save-weights local_w.h5 >local.log 2>&1 ||
  bad "local SGD run" local.log
/usr/bin/python3 - local.h5 <<'PY' && ok "local SGD: one weight average every 3 steps, nothing between" || fail=1
import sys, h5py
with h5py.File(sys.argv[1]) as f:
    c = f["steps"]["comm_calls"][:, 0]
    b = f["steps"]["comm_bytes"][:, 0]
want = [1] * 4 + [1 if (s - 4 + 1) % 3 == 0 else 0 for s in range(4, 16)]
if list(c) != want or any((b > 0) != (c > 0)):
    print("FAIL calls", list(c), "want", want, "bytes", list(b)); sys.exit(1)
PY
exit $fail
