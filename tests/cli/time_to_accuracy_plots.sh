#!/usr/bin/env bash
# Time to accuracy in tools/plot_metrics.py and tools/scaling_sweep.sh, on synthetic metrics files
# made with h5py (no MPI runs, a few seconds). The files follow docs/metrics.md: N = 1 (8 steps per
# epoch) and N = 2 (4), an evaluation every 2 steps and at each epoch's end (evals/), target 50%:
#   - both reach it: accuracy_vs_time.png is a PNG; summary.md says "throughput speedup (images/s)"
#     and "time-to-accuracy speedup", whose value equals T1/T2 (summary/time_to_target) within its
#     rounding, and the time to target and epochs to target equal the files' values;
#   - N = 2 never reaches it: its time to target and time-to-accuracy speedup are "—";
#   - older files without evals/ and target attributes still plot (accuracy_vs_time.png from
#     epochs/), with no time-to-target columns; --target A derives them from epochs/;
#   - --compare: compare.md has a time-to-target column per run ("—" when not reached);
#   - a bad --out (a file, a path under one, a folder that cannot be made) is one error line;
#   - cifar_tools.time_to_target DIR A measures every run at A: its rows equal summary.md's of
#     plot_metrics --target A (the runs' own target, a lower one, files without one); A > 1 refused;
#   - tools/scaling_sweep.sh --target 0.5 --eval-every 2, run with a stand-in mpirun and cifar_mpi
#     that write such files: every run gets --target-accuracy 0.5 --eval-every 2 (and --epochs 30),
#     and the final table shows both speedups; without --target nothing changes; bad values exit 2.
#   bash tests/cli/time_to_accuracy_plots.sh <cifar_mpi binary (unused)> <source dir> <data dir (unused)>
# Prints one PASS/FAIL line per case; exits 1 if any failed, 77 (skip) without a python3 that has
# numpy, h5py and matplotlib.
set -u

SRC=${2:?usage: time_to_accuracy_plots.sh <cifar_mpi> <source dir> <data dir>}
SRC=$(realpath "$SRC")
source "$SRC/tests/cli/common.bash"
PY=$(python_with numpy h5py matplotlib)
[[ -n $PY ]] || { echo "SKIP: no python3 with numpy, h5py and matplotlib"; exit 77; }
PLOT="$SRC/tools/plot_metrics.py"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cifar_tta_plots.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1

# --- the synthetic files ---------------------------------------------------------------------
cat >gen.py <<'EOF'
import math, sys
import h5py, numpy as np

def write(path, n, target=math.nan, reach_wall=None, evals=True, eval_every=2, epochs=3):
    """A minimal complete metrics file of N ranks: 8/N steps per epoch, one eval every eval_every steps
    and at each epoch end; accuracy rises linearly in wall time; reach_wall: wall at which acc >= target."""
    spe, batch = 8 // n, 128
    steps = spe * epochs
    step_t = 0.5 * (1 + 0.1 * (n - 1))  # s per step: N ranks take a little longer per step
    eval_t = 0.25     # s per evaluation
    rng = np.random.default_rng(n)
    with h5py.File(path, "w") as f:
        a = f.attrs
        a["format"] = "cifar_mpi metrics v1 (docs/metrics.md)"
        a["complete"] = 1
        a["world_size"] = n
        a["ranks_per_node"] = n
        a["nodes"] = 1
        a["threads_per_rank"] = 1
        a["hardware_threads"] = 2
        a["oversubscribed"] = 0
        a["hosts"] = "testhost"
        a["strategy"] = "ring"
        a["bucket_mb"] = 25.0
        a["buckets"] = 1
        a["overlap"] = 0
        a["wire_dtype"] = "fp32"
        a["epochs_planned"] = epochs
        a["max_steps"] = 0
        a["batch_per_rank"] = batch
        a["global_batch"] = batch * n
        a["steps_per_epoch"] = spe
        a["parameter_count"] = 315722
        a["gradient_bytes"] = 4 * 315722
        a["start_time"] = f"2026-01-01T12:00:0{n}+00:00"
        a["git_commit"] = "abc1234"
        for k, v in (("epochs", epochs), ("batch_size", batch), ("allreduce", "ring"), ("data_dir", "data")):
            a["config." + k] = str(v)
        g = f.create_group("steps")
        for k in ("t_data", "t_comp", "t_comm", "t_wait", "t_update"):
            frac = {"t_data": 0.05, "t_comp": 0.8, "t_comm": 0.1 if n > 1 else 0, "t_wait": 0.1 if n > 1 else 0,
                    "t_update": 0.05}[k]
            g[k] = np.full((steps, n), step_t * frac) * rng.uniform(0.9, 1.1, (steps, n))
        g["loss"] = np.linspace(2.3, 1.0, steps)[:, None].repeat(n, 1)
        g["comm_calls"] = np.full((steps, n), 0 if n == 1 else 1, dtype=np.uint32)
        g["comm_bytes"] = np.full((steps, n), 0 if n == 1 else 4 * 315722, dtype=np.uint64)
        g["epoch"] = np.repeat(np.arange(1, epochs + 1, dtype=np.int32), spe)
        # evaluations
        ev_steps = sorted(set(range(eval_every, steps + 1, eval_every)) | set(range(spe, steps + 1, spe)))
        ev_steps = np.array(ev_steps, dtype=np.int64)
        k = np.arange(1, len(ev_steps) + 1)
        train_time = ev_steps * step_t
        wall = train_time + k * eval_t
        rate = (target - 0.1) / reach_wall if reach_wall else 0.4 / wall[-1] * 0.9
        acc = 0.1 + rate * wall
        if not math.isnan(target) and reach_wall is None:
            acc = np.minimum(acc, target - 0.05)
        reached = None
        if not math.isnan(target):
            hit = np.flatnonzero(acc >= target - 1e-12)
            if hit.size:
                reached = int(hit[0])
                acc[reached] = max(acc[reached], target)
                # the trainer stops at the first evaluation reaching the target
                ev_steps, train_time, wall, acc = (x[:reached + 1] for x in (ev_steps, train_time, wall, acc))
        if evals:
            e = f.create_group("evals")
            e["step"] = ev_steps
            e["epoch"] = ev_steps / spe
            e["wall"] = wall
            e["train_time"] = train_time
            e["test_loss"] = 2.3 - acc
            e["test_accuracy"] = acc
        done = int(ev_steps[-1]) if reached is not None else steps
        ep = f.create_group("epochs")
        n_ep = math.ceil(done / spe)
        at_end = [min((i + 1) * spe, done) for i in range(n_ep)]
        ep["epoch"] = np.arange(1, n_ep + 1, dtype=np.int32)
        ep["steps"] = np.diff([0] + at_end).astype(np.int64)
        ep["images"] = ep["steps"][()] * batch * n
        ep["train_loss"] = np.linspace(2.0, 1.2, n_ep)
        ep_acc = np.array([acc[list(ev_steps).index(s)] for s in at_end])
        ep["test_loss"] = 2.3 - ep_acc
        ep["test_accuracy"] = ep_acc
        ep["wall"] = ep["steps"][()] * step_t
        s = f.create_group("summary").attrs
        s["epochs"] = n_ep
        s["steps"] = done
        s["images"] = done * batch * n
        s["total_train_time"] = done * step_t
        s["total_wall"] = float(wall[-1])
        s["images_per_second"] = batch * n / step_t
        s["avg_iteration_time"] = step_t
        s["comm_calls_per_epoch"] = 0.0 if n == 1 else float(spe)
        s["total_comm_time"] = float(f["steps/t_comm"][()].sum(axis=0).mean())
        s["total_wait_time"] = float(f["steps/t_wait"][()].sum(axis=0).mean())
        s["total_comp_time"] = float(f["steps/t_comp"][()].sum(axis=0).mean())
        s["compute_to_comm_ratio"] = s["total_comp_time"] / s["total_comm_time"] if n > 1 else math.nan
        s["final_train_loss"] = 1.2
        s["final_test_accuracy"] = float(ep_acc[-1])
        if evals:
            a["target_accuracy"] = target
            s["target_reached"] = int(reached is not None)
            s["time_to_target"] = float(wall[reached]) if reached is not None else math.nan
            s["time_to_target_train"] = float(train_time[reached]) if reached is not None else math.nan
            s["steps_to_target"] = np.int64(ev_steps[reached]) if reached is not None else np.int64(-1)
            s["epochs_to_target"] = float(ev_steps[reached] / spe) if reached is not None else math.nan

if __name__ == "__main__":
    import os
    if sys.argv[1] == "one":  # gen.py one PATH N TARGET REACH_WALL|none: the stand-in cifar_mpi
        reach = None if sys.argv[5] == "none" else float(sys.argv[5])
        write(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), reach_wall=reach)
        sys.exit(0)
    d = sys.argv[1]
    for sub in ("reach", "miss", "old"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    write(f"{d}/reach/np1.h5", 1, 0.5, reach_wall=9.0)   # reached at the eval at 10.00 s (2 epochs)
    write(f"{d}/reach/np2.h5", 2, 0.5, reach_wall=5.0)   # reached at the eval at 5.40 s (2 epochs)
    write(f"{d}/miss/np1.h5", 1, 0.5, reach_wall=9.0)
    write(f"{d}/miss/np2.h5", 2, 0.5, reach_wall=None)  # stays below 45%
    write(f"{d}/old/np1.h5", 1, evals=False)            # no evals/, no target attributes
    write(f"{d}/old/np2.h5", 2, evals=False)
EOF
"$PY" gen.py "$TMP" >gen.out 2>&1 || { echo "FAIL: could not write the synthetic metrics files"; cat gen.out; exit 1; }

# check.py MODE DIR...: reads summary.md / compare.md and the files with h5py; prints what it
# checked, or raises AssertionError naming the difference.
cat >check.py <<'EOF'
import math, os, sys
import h5py, numpy as np
mode, d = sys.argv[1], sys.argv[2]

def table(path, first):
    """The Markdown table whose header starts with `first`: {first column value: {header: cell}}."""
    lines = open(path).read().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith(first))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = {}
    for l in lines[start + 2:]:
        if not l.startswith("|"):
            break
        cells = [c.strip() for c in l.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header, cells))
    return header, rows

def close(cell, want, what):
    decimals = len(cell.split(".")[1]) if "." in cell else 0
    assert abs(float(cell) - want) <= 0.5 * 10 ** -decimals * 1.001 + 1e-9, f"{what}: table {cell} vs files {want}"

def png(path):
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert os.path.getsize(path) > 5000, f"{path} is suspiciously small"

def summary(n, sub=d):
    with h5py.File(os.path.join(sub, f"np{n}.h5"), "r") as f:
        return dict(f["summary"].attrs)

TTA, THR, TT = "time-to-accuracy speedup", "throughput speedup (images/s)", "time to target (s)"
if mode == "reach":
    png(os.path.join(d, "accuracy_vs_time.png"))
    header, rows = table(os.path.join(d, "summary.md"), "| N |")
    assert THR in header and TTA in header and TT in header, header
    s1, s2 = summary(1), summary(2)
    assert s1["target_reached"] == 1 and s2["target_reached"] == 1
    t1, t2 = s1["time_to_target"], s2["time_to_target"]
    close(rows["2"][TTA], t1 / t2, "N=2 time-to-accuracy speedup")
    close(rows["1"][TTA], 1.0, "N=1 time-to-accuracy speedup")
    close(rows["1"][TT], t1, "N=1 time to target")
    close(rows["2"][TT], t2, "N=2 time to target")
    close(rows["2"]["epochs to target"], s2["epochs_to_target"], "N=2 epochs to target")
    close(rows["2"][THR], s2["images_per_second"] / s1["images_per_second"], "N=2 throughput speedup")
    assert abs(t1 / t2 - s2["images_per_second"] / s1["images_per_second"]) > 0.01  # the two differ here
    print(f"time-to-accuracy speedup {rows['2'][TTA]} = {t1:.2f} s / {t2:.2f} s; throughput speedup {rows['2'][THR]}")
    # Where the speedup goes: the factors from the files, and their products are the two speedups.
    header, f = table(os.path.join(d, "summary.md"), "| N | ideal |")
    comp = {}
    for n in (1, 2):
        with h5py.File(os.path.join(d, f"np{n}.h5"), "r") as h:
            comp[n] = float(h["steps/t_comp"][()].sum(axis=0).mean())
    c = {n: comp[n] / (summary(n)["images"] / n) for n in (1, 2)}
    share = {n: comp[n] / summary(n)["total_train_time"] for n in (1, 2)}
    col = lambda name: next(h for h in header if h.startswith(name))
    close(f["2"][col("x compute per image")], c[1] / c[2], "N=2 compute-per-image factor")
    close(f["2"][col("x compute share")].split()[0], share[2] / share[1], "N=2 compute-share factor")
    close(f["2"][col("x epochs to target")], s1["epochs_to_target"] / s2["epochs_to_target"], "N=2 epochs factor")
    assert abs(c[1] / c[2] - 1) > 0.005, "the synthetic ranks compute at the same speed: the check proves nothing"
    thr = 2 * float(f["2"][col("x compute per image")]) * float(f["2"][col("x compute share")].split()[0])
    assert abs(thr / float(f["2"][col("= throughput")]) - 1) < 0.003, f"factors' product {thr} vs {f['2']}"
    tta = float(f["2"][col("= throughput")]) * float(f["2"][col("x epochs")]) * float(f["2"][col("x evaluations")])
    assert abs(tta / float(rows["2"][TTA]) - 1) < 0.003, f"factors' product {tta} vs {rows['2'][TTA]}"
    print(f"speedup factors: 2 x {f['2'][col('x compute per image')]} x {f['2'][col('x compute share')]} = "
          f"{f['2'][col('= throughput')]}, x {f['2'][col('x epochs')]} x {f['2'][col('x evaluations')]} = {rows['2'][TTA]}")
elif mode == "miss":
    png(os.path.join(d, "accuracy_vs_time.png"))
    header, rows = table(os.path.join(d, "summary.md"), "| N |")
    assert summary(2)["target_reached"] == 0
    assert rows["2"][TT] == "—" and rows["2"][TTA] == "—" and rows["2"]["epochs to target"] == "—", rows["2"]
    close(rows["1"][TT], summary(1)["time_to_target"], "N=1 time to target")
    print(f"N=2 not reached: time to target {rows['2'][TT]}, time-to-accuracy speedup {rows['2'][TTA]}")
elif mode == "old":
    png(os.path.join(d, "accuracy_vs_time.png"))
    header, rows = table(os.path.join(d, "summary.md"), "| N |")
    assert THR in header and TTA not in header and TT not in header, header
    print("no evals/: plotted, no time-to-target columns")
elif mode == "old_target":  # DIR = the output folder, argv[3] = the files' folder, argv[4] = A
    src, target = sys.argv[3], float(sys.argv[4])
    header, rows = table(os.path.join(d, "summary.md"), "| N |")
    t = {}
    for n in (1, 2):
        with h5py.File(os.path.join(src, f"np{n}.h5"), "r") as f:
            acc, wall = f["epochs/test_accuracy"][()], np.cumsum(f["epochs/wall"][()])
        t[n] = float(wall[np.flatnonzero(acc >= target)[0]])
        close(rows[str(n)][TT], t[n], f"N={n} time to target from epochs/")
    close(rows["2"][TTA], t[1] / t[2], "N=2 time-to-accuracy speedup from epochs/")
    print(f"--target {target}: from epochs/, {t[1]:.2f} s and {t[2]:.2f} s")
elif mode == "compare":  # DIR = the output folder, argv[3] = the files' folder
    png(os.path.join(d, "accuracy_vs_time.png"))
    header, rows = table(os.path.join(d, "compare.md"), "| run |")
    assert TT in header, header
    assert rows["`np2.h5`"][TT] == "—", rows["`np2.h5`"]
    close(rows["`np1.h5`"][TT], summary(1, sys.argv[3])["time_to_target"], "np1 time to target")
    print(f"compare.md: time to target {rows['`np1.h5`'][TT]} and {rows['`np2.h5`'][TT]}")
elif mode == "ttt":  # DIR = plot_metrics' output folder, argv[3] = time_to_target's output
    _, rows = table(os.path.join(d, "summary.md"), "| N |")
    got = {l.split()[0]: l.split() for l in open(sys.argv[3]) if l.split() and l.split()[0].isdigit()}
    assert set(got) == set(rows), (got, rows)
    for n, cells in got.items():
        tt, tta = rows[n][TT], rows[n][TTA]
        for mine, theirs, what in ((cells[2], tt, "time to target"), (cells[3], tta, "time-to-accuracy speedup")):
            if theirs == "—":
                assert mine == "-", f"N={n} {what}: time_to_target {mine}, summary.md {theirs}"
            else:
                close(mine, float(theirs), f"N={n} {what} (time_to_target vs summary.md)")
    print("time_to_target's rows = summary.md's: " + "; ".join(f"N={n} {c[2]} s" for n, c in sorted(got.items())))
else:
    raise SystemExit(f"unknown mode {mode}")
EOF

# check_case NAME MODE ARGS...: one case of check.py
check_case() {
  local name=$1
  shift
  if "$PY" check.py "$@" >check.out 2>&1; then
    pass "$name: $(tail -n 1 check.out)"
  else
    fail "$name" "$(tail -n 4 check.out)"
  fi
}

# plot NAME ARGS...: runs plot_metrics.py; a failure (non-zero exit) is a FAIL of NAME
plot() {
  local name=$1
  shift
  if ! "$PY" "$PLOT" "$@" >plot.out 2>&1; then
    fail "$name: plot_metrics.py $* exited non-zero" "$(tail -n 4 plot.out)"
    return 1
  fi
}

# --- both reach the target ---------------------------------------------------------------------
if plot "both reach the target" reach; then
  if grep -q accuracy_vs_time.png plot.out; then pass "plot_metrics.py lists accuracy_vs_time.png"
  else fail "plot_metrics.py lists accuracy_vs_time.png" "$(cat plot.out)"; fi
  check_case "both reach the target: summary.md vs the files" reach reach
fi

# --- N = 2 never reaches it --------------------------------------------------------------------
plot "N=2 misses the target" miss && check_case "N=2 misses the target: — in its columns" miss miss

# --- older files: no evals/, no target ---------------------------------------------------------
plot "old files without evals/" old && check_case "old files without evals/ still plot" old old
plot "old files with --target 0.3" old --target 0.3 --out old3 &&
  check_case "old files, --target 0.3: time to target from epochs/" old_target old3 old 0.3

# --- --compare ---------------------------------------------------------------------------------
plot "--compare" miss --compare --out cmp && check_case "--compare: compare.md has time to target" compare cmp miss

# --- a bad --target ----------------------------------------------------------------------------
"$PY" "$PLOT" reach --target 70 --out bad >bad.out 2>bad.err
rc=$?
if [[ $rc -ne 0 && $(wc -l <bad.err) -eq 1 ]] && grep -q -- "--target 70" bad.err; then
  pass "plot_metrics.py --target 70 refused: $(cat bad.err)"
else
  fail "plot_metrics.py --target 70 refused with one line (exit $rc)" "$(cat bad.err)"
fi

# --- a bad --out: one line naming it, no traceback ----------------------------------------------
# an existing file, a path under a file, and a folder that cannot be made (/proc takes none)
echo "not a folder" >afile.h5
for out in afile.h5 afile.h5/sub /proc/cifar_plots; do
  "$PY" "$PLOT" reach --out "$out" >bad.out 2>bad.err
  rc=$?
  if [[ $rc -ne 0 && $(wc -l <bad.err) -eq 1 ]] && grep -q "^plot_metrics: error: --out $out: " bad.err; then
    pass "plot_metrics.py --out $out refused: $(cat bad.err)"
  else
    fail "plot_metrics.py --out $out refused with one line naming it (exit $rc)" "$(tail -n 3 bad.err)"
  fi
done

# --- cifar_tools.time_to_target: measured at its TARGET, as plot_metrics --target --------------
# The runs' own target (their summaries), a lower one (both reach it earlier, from evals/), and one
# older files never recorded (from epochs/): each table equals summary.md of the same target.
# ttt NAME DIR TARGET [PLOT_ARGS...]: time_to_target DIR TARGET against plot_metrics DIR PLOT_ARGS
ttt() {
  local name=$1 dir=$2 target=$3
  shift 3
  if ! PYTHONPATH="$SRC/tools" "$PY" -m cifar_tools.time_to_target "$dir" "$target" >ttt.out 2>ttt.err; then
    fail "$name: time_to_target exited non-zero" "$(tail -n 3 ttt.err)"
  elif ! grep -q "^scaling_sweep: time to $(awk -v t="$target" 'BEGIN { print 100 * t }')% test accuracy" ttt.out; then
    fail "$name: heading" "$(head -n 1 ttt.out)"
  elif plot "$name" "$dir" --out "ttt_$name" "$@"; then
    check_case "$name" ttt "ttt_$name" ttt.out
  fi
}
ttt "time_to_target reach 0.5 (the runs' own target)" reach 0.5
ttt "time_to_target reach 0.3 (a lower target)" reach 0.3 --target 0.3
ttt "time_to_target miss 0.3 (N=2 reaches the lower one)" miss 0.3 --target 0.3
ttt "time_to_target old 0.3 (files without targets)" old 0.3 --target 0.3
PYTHONPATH="$SRC/tools" "$PY" -m cifar_tools.time_to_target reach 0.3 >ttt.out 2>&1
row2=$(grep -E '^ +2 ' ttt.out | tr -s ' ')
if [[ -n $row2 && $row2 != *" - "* && $row2 != " 2 1.818 5.400 1.852" ]]; then
  pass "time_to_target reach 0.3: times differ from the 0.5 ones: '$row2'"
else
  fail "time_to_target reach 0.3: times at 30%, not the runs' 50% ones" "$(cat ttt.out)"
fi
PYTHONPATH="$SRC/tools" "$PY" -m cifar_tools.time_to_target reach 1.5 >ttt.out 2>ttt.err
rc=$?
if [[ $rc -ne 0 ]] && [[ $(grep -c 'error' ttt.err) -eq 1 ]] && grep -q 'TARGET 1.5' ttt.err &&
   ! grep -q Traceback ttt.err; then
  pass "time_to_target reach 1.5 refused: $(grep error ttt.err)"
else
  fail "time_to_target reach 1.5 refused with one error line (exit $rc)" "$(cat ttt.err)"
fi

# --- tools/scaling_sweep.sh --target, with a stand-in mpirun and cifar_mpi --------------------
# mpirun: drops its own flags and runs the program with FAKE_N = -np. cifar_mpi: logs its
# arguments, writes a metrics file of FAKE_N ranks (the target reached at 10.00 s with N = 1 and
# 5.40 s with N = 2, as above; no target without --target-accuracy).
mkdir -p bin fakebuild
cat >bin/mpirun <<'EOF'
#!/usr/bin/env bash
n=1
while (($#)); do
  case $1 in
    -np) n=$2; shift 2 ;;
    --bind-to | --map-by) shift 2 ;;
    --oversubscribe) shift ;;
    --mca) shift 3 ;;
    *) break ;;
  esac
done
FAKE_N=$n exec "$@"
EOF
cat >fakebuild/cifar_mpi <<'EOF'
#!/usr/bin/env bash
echo "N=$FAKE_N: $*" >>"$FAKE_ARGS"
metrics="" target=nan
while (($#)); do
  case $1 in
    --metrics) metrics=$2; shift 2 ;;
    --target-accuracy) target=$2; shift 2 ;;
    *) shift ;;
  esac
done
reach=none
[[ $target != nan ]] && { ((FAKE_N == 1)) && reach=9.0 || reach=5.0; }
"$FAKE_PY" "$FAKE_GEN" one "$metrics" "$FAKE_N" "$target" "$reach" || exit 1
echo "total training time  1.000 s"
EOF
chmod +x bin/mpirun fakebuild/cifar_mpi
export FAKE_PY=$PY FAKE_GEN=$TMP/gen.py
SWEEP_ENV=(env "PATH=$TMP/bin:$PATH" "CIFAR_BUILD=$TMP/fakebuild")

# sweep NAME ARGS...: runs the sweep with the stand-ins; its output in sweep.out, the arguments the
# runs got in args.txt; returns the sweep's exit code
sweep() {
  export FAKE_ARGS=$TMP/args.txt
  rm -f "$FAKE_ARGS"
  timeout 120 "${SWEEP_ENV[@]}" bash "$SRC/tools/scaling_sweep.sh" "$@" >sweep.out 2>&1
}

sweep --np "1 2" --out sw --target 0.5 --eval-every 2 -- --batch-size 128
rc=$?
n_ok=$(grep -c -- '--target-accuracy 0.5 --epochs 30 --eval-every 2 --threads 1 --batch-size 128' args.txt 2>/dev/null)
row2=$(grep -E '^ +2 ' sweep.out | tail -n 1 | tr -s ' ')
if [[ $rc -eq 0 && $n_ok -eq 2 ]] && grep -q '^scaling_sweep: time to 50% test accuracy' sweep.out &&
   [[ $row2 == " 2 1.818 5.400 1.852" ]]; then
  pass "scaling_sweep.sh --target 0.5 --eval-every 2: both runs got the flags; table row '$row2'"
else
  fail "scaling_sweep.sh --target 0.5 --eval-every 2 (exit $rc, $n_ok run(s) with the flags, N=2 row '$row2')" \
    "$(cat args.txt 2>&1)" "$(tail -n 6 sweep.out)"
fi
if [[ -s sw/accuracy_vs_time.png ]] && grep -q 'time-to-accuracy speedup' sw/summary.md; then
  pass "scaling_sweep.sh --target: the sweep folder has accuracy_vs_time.png and the columns in summary.md"
else
  fail "scaling_sweep.sh --target: accuracy_vs_time.png and summary.md's columns" "$(ls sw 2>&1)"
fi

sweep --np "1 2" --out sw0 -- --batch-size 128
rc=$?
if [[ $rc -eq 0 ]] && ! grep -q -- '--target-accuracy\|--eval-every' args.txt &&
   [[ $(grep -c -- '--epochs 1 --threads 1 --batch-size 128' args.txt) -eq 2 ]] &&
   ! grep -q 'time to .* test accuracy' sweep.out && ! grep -q 'time-to-accuracy' sw0/summary.md; then
  pass "scaling_sweep.sh without --target: runs and summary as before (no target flags, no time-to-accuracy table)"
else
  fail "scaling_sweep.sh without --target unchanged (exit $rc)" "$(cat args.txt 2>&1)" "$(tail -n 4 sweep.out)"
fi

for bad in "--target 1.5" "--target abc" "--eval-every 2" "--target 0.5 --eval-every 0" \
           "--target 0.5 -- --target-accuracy 0.5"; do
  # shellcheck disable=SC2086
  sweep --np 1 --out swbad $bad
  rc=$?
  if [[ $rc -eq 2 && ! -s args.txt ]]; then
    pass "scaling_sweep.sh $bad: exit 2 before any run: $(head -n 1 sweep.out)"
  else
    fail "scaling_sweep.sh $bad: exit 2 before any run (exit $rc)" "$(head -n 3 sweep.out)"
  fi
done

if ((failures)); then
  echo "time_to_accuracy_plots: $failures case(s) failed"
  exit 1
fi
echo "time_to_accuracy_plots: all cases passed"
exit 0
