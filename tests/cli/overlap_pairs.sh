#!/usr/bin/env bash
# tools/overlap_pairs.sh and cifar_tools.overlap_share, on a small fake data set:
#   - one pair (--reps 1 --steps 6, mpi, one bucket size) runs and ends with the realised share;
#   - a count that is not positive (--reps 0, --reps x, --steps 5), an empty list, an option
#     without its value and a --bin that is not an executable are refused before any run: exit 2,
#     one line naming the option;
#   - overlap_share's two shares on a pair with made-up timers: the whole on run's, and its
#     overlapped steps' alone (the held-back ones left out);
#   - overlap_share refuses, in one line naming both files, two files that are not an overlap
#     off/on pair: the order swapped, overlap off in both, another option or world size differing.
#   bash tests/cli/overlap_pairs.sh <cifar_mpi binary> <source dir> <data dir (ignored)>
# Prints one PASS/FAIL line per case; exits 1 if any failed, 77 (skip) without a python3 with
# h5py and numpy.
set -u
bin=$(realpath "${1:?usage: overlap_pairs.sh <cifar_mpi> <source dir> <data dir>}")
src=$(realpath "${2:?usage: overlap_pairs.sh <cifar_mpi> <source dir> <data dir>}")
source "$src/tests/cli/common.bash"
fake_run_setup 64  # tmp (the current folder), data/, py

# --- one pair, end to end ----------------------------------------------------------------------
timeout 300 bash "$src/tools/overlap_pairs.sh" --bin "$bin" --reps 1 --steps 6 --strategies mpi --buckets 25 \
  --keep "$tmp/kept" -- --data-dir "$tmp/data" --batch-size 16 >pairs.out 2>pairs.err
rc=$?
off=$tmp/kept/1-mpi-25-0-off.h5 on=$tmp/kept/1-mpi-25-0-on.h5
line=$(grep "realised share: median" pairs.out)
if [[ $rc -eq 0 && -n $line && -f $off && -f $on ]]; then
  pass "overlap_pairs.sh --reps 1 --steps 6: $(tr -s ' ' <<<"$line")"
else
  fail "overlap_pairs.sh --reps 1 --steps 6 (exit $rc)" "$(tail -n 4 pairs.err)" "$(tail -n 2 pairs.out)"
fi

# --- bad options: refused before any run -------------------------------------------------------
for bad in "--reps 0|--reps" "--reps x|--reps" "--steps 5|--steps" "--strategies ''|--strategies" \
           "--buckets ' '|--buckets" "--reps|--reps" "--bin $tmp/data|--bin"; do
  args=${bad%|*} option=${bad##*|}
  eval "timeout 60 bash \"\$src/tools/overlap_pairs.sh\" $args" >bad.out 2>bad.err
  rc=$?
  if [[ $rc -eq 2 && ! -s bad.out && $(wc -l <bad.err) -eq 1 ]] && grep -q "^overlap_pairs: $option" bad.err; then
    pass "overlap_pairs.sh $args refused: $(cat bad.err)"
  else
    fail "overlap_pairs.sh $args: exit 2 before any run, one line naming $option (exit $rc)" \
      "$(head -n 3 bad.err)" "$(head -n 2 bad.out)"
  fi
done

# --- overlap_share: only off/on pairs ----------------------------------------------------------
share() { PYTHONPATH="$src/tools" "$py" -m cifar_tools.overlap_share "$@"; }
if [[ -f $off && -f $on ]]; then
  # copies of the on run with one attribute changed (the option, or the world size)
  "$py" - "$on" <<'EOF'
import shutil, sys
import h5py
on = sys.argv[1]
for name, key, value in (("lr", "config.lr", "0.02"), ("np", "world_size", 3)):
    shutil.copy(on, f"{name}.h5")
    with h5py.File(f"{name}.h5", "r+") as f:
        f.attrs[key] = value
EOF
  if share CASE "$off" "$on" >share.out 2>share.err && grep -q "realised share" share.out; then
    pass "overlap_share on an off/on pair: $(tail -n 1 share.out | tr -s ' ')"
  else
    fail "overlap_share on an off/on pair" "$(cat share.err)"
  fi
  # Made-up timers: every step computes 10 ms and sends 4; the off run waits 4 ms a step (step
  # 14 ms), the on run 1 ms where it overlapped and 4 where it held back (steps/overlapped as the
  # run wrote it): share (14 - mean step) / 4 over the steps from the 5th, and 0.75 over the
  # overlapped ones alone.
  want=$("$py" - "$off" "$on" <<'EOF'
import shutil, sys
import h5py, numpy as np
for src, dst, on in ((sys.argv[1], "fake_off.h5", False), (sys.argv[2], "fake_on.h5", True)):
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        s = f["steps"]
        shape = s["t_comp"].shape
        marks = np.asarray(s["overlapped"]).reshape(shape[0], -1).all(axis=1)
        for name, ms in (("t_data", 0.0), ("t_update", 0.0), ("t_comp", 10.0), ("t_comm", 4.0)):
            s[name][...] = np.full(shape, ms * 1e-3)
        wait = np.where(marks, 1.0, 4.0) if on else np.full(shape[0], 4.0)
        s["t_wait"][...] = np.repeat(wait[:, None], shape[1], axis=1) * 1e-3
        if on:
            step, kept = 10.0 + wait[4:], marks[4:]
            print(f"{(14.0 - step.mean()) / 4.0:.2f} {(14.0 - step[kept].mean()) / 4.0 if kept.any() else 0:.2f}")
EOF
)
  read -r want_all want_steady <<<"$want"
  if share FAKE fake_off.h5 fake_on.h5 >fake.out 2>fake.err &&
     grep -q "realised share: median  *$want_all .*overlapped steps alone: median  *$want_steady\$" fake.out; then
    pass "overlap_share on made-up timers: $want_all over all steps, $want_steady over the overlapped ones"
  else
    fail "overlap_share on made-up timers: want $want_all and $want_steady" "$(tail -n 1 fake.out)" "$(cat fake.err)"
  fi
  for bad in "$on|$off|overlap is on in the first and off in the second" \
             "$off|$off|overlap is off in the first and off in the second" \
             "$off|lr.h5|--lr (0.01 vs 0.02)" "$off|np.h5|world size (2 vs 3)"; do
    IFS='|' read -r a b want <<<"$bad"
    share CASE "$a" "$b" >share.out 2>share.err
    rc=$?
    if [[ $rc -ne 0 && $(wc -l <share.err) -eq 1 ]] &&
       grep -qF "overlap_share: error: CASE: $a and $b are not an overlap off/on pair: " share.err &&
       grep -qF -- "$want" share.err; then
      pass "overlap_share $(basename "$a") $(basename "$b") refused: $(sed "s|$tmp/||g" share.err)"
    else
      fail "overlap_share $(basename "$a") $(basename "$b"): one line naming both files and '$want' (exit $rc)" \
        "$(head -n 3 share.err)" "$(head -n 2 share.out)"
    fi
  done
fi

if ((failures)); then
  echo "overlap_pairs: $failures case(s) failed"
  exit 1
fi
echo "overlap_pairs: all cases passed"
exit 0
