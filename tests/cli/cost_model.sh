#!/usr/bin/env bash
# tools/cost_model.py on synthetic inputs whose answers are known (no MPI runs, a few seconds):
#   - bench CSVs made from known alpha, beta (ring) and a, b (MPI_Allreduce) at N = 2 and 4: the
#     fits (fits.csv) recover them within 1%, per file and pooled over N;
#   - metrics files of N = 4 runs at "1gbit" whose wall time is built from the same model (ring,
#     naive, ring with overlap, whose big bucket hides behind backward): predicted/measured = 1;
#     a run 30% slower is flagged, and --strict then exits 1;
#   - the extrapolation: the per-rank batch at which efficiency falls to 50% at N = 64 equals the
#     closed form, and the tables and both PNGs are written;
#   - the model/ group (tensors, bucket plan, layer times) is read from each file: layer times that
#     make fc1's backward last the whole step expose both buckets; a file without the group is an
#     error unless --layer-times FILE.h5 lends one;
#   - bad input: a missing file, a missing column, a missing attribute and an unnamed link each
#     exit 2 with one line "cost_model.py: error: ..." naming the file and what is wrong.
#   bash tests/cli/cost_model.sh <cifar_mpi binary (unused)> <source dir> <data dir (unused)>
# Prints one PASS/FAIL line per case; exits 1 if any failed, 77 (skip) without a python3 that has
# numpy, h5py and matplotlib.
set -u

SRC=${2:?usage: cost_model.sh <cifar_mpi> <source dir> <data dir>}
SRC=$(realpath "$SRC")
source "$SRC/tests/cli/common.bash"
PY=$(python_with numpy h5py matplotlib)
[[ -n $PY ]] || { echo "SKIP: no python3 with numpy, h5py and matplotlib"; exit 77; }
TOOL="$SRC/tools/cost_model.py"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/cifar_cost_model.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1
mkdir -p sweep out bad old late

# Known model: ring alpha 40 us, beta = 8 / 0.95 Gbit/s; MPI_Allreduce a = 60 us, b = 9 ns/B.
# Metrics: N = 4, t_data 1 ms + t_comp 60 ms + t_update 1 ms per step, 30 steps, link 1gbit.
"$PY" - <<'EOF' || { echo "FAIL: could not write the synthetic inputs"; exit 1; }
import h5py, numpy as np
ALPHA, BETA, A, B = 40e-6, 8 / 0.95e9, 60e-6, 9e-9
def ring(S, n): return 2 * (n - 1) * ALPHA + 2 * (n - 1) / n * S * BETA
def mpi(S): return A + B * S
for n in (2, 4):
    with open(f"sweep/bench-1gbit-np{n}.csv", "w") as f:
        f.write("ranks,size_bytes,count,mpi_time_us,mpi_algbw_gbps,mpi_busbw_gbps,ring_time_us,"
                "ring_algbw_gbps,ring_busbw_gbps,ring_over_mpi_busbw,check\n")
        S = 16
        while S <= 4 << 20:
            f.write(f"{n},{S},{S // 4},{mpi(S) * 1e6:.6f},0,0,{ring(S, n) * 1e6:.6f},0,0,0,ok\n")
            S *= 2
# The model/ group of every file (tensors in backward order, per-layer times in forward order); the
# runs' bucket plans and times below are built from these same numbers.
TENSORS = [("fc2.bias", 10), ("fc2.weight", 1280), ("fc1.bias", 128), ("fc1.weight", 294912),
           ("conv2.bias", 64), ("conv2.weight", 18432), ("conv1.bias", 32), ("conv1.weight", 864)]
LAYERS = [("conv1", 3.659, 3.708), ("pool1", 2.159, 3.145), ("relu1", 0.128, 0.823), ("conv2", 10.560, 22.523),
          ("pool2", 1.452, 0.984), ("relu2", 0.141, 0.167), ("fc1", 1.802, 1.583), ("relu3", 0.006, 0.007),
          ("fc2", 0.028, 0.071)]  # ms
FLOATS = [n for _, n in TENSORS]
OFFSETS = list(np.cumsum([0] + FLOATS[:-1]))
assert sum(FLOATS) * 4 == 1262888
STEPS, N, TD, TC, TU = 30, 4, 1e-3, 60e-3, 1e-3
def write_model(f, bucket_floats):
    g = f.create_group("model")
    g.attrs["layer_steps"] = STEPS
    g["tensor_name"] = [n.encode() for n, _ in TENSORS]
    g["tensor_floats"], g["tensor_offset"] = np.array(FLOATS), np.array(OFFSETS)
    g["bucket_floats"] = np.array(bucket_floats)
    g["bucket_offset"] = np.cumsum([0] + bucket_floats[:-1])
    g["layer_name"] = [n.encode() for n, _, _ in LAYERS]
    g["layer_forward"] = np.array([fw for _, fw, _ in LAYERS]) * 1e-3
    g["layer_backward"] = np.array([bw for _, _, bw in LAYERS]) * 1e-3
def write(name, strategy, bucket_mb, buckets, overlap, comm_per_step, slow=1.0):
    with h5py.File(f"sweep/{name}.h5", "w") as f:
        write_model(f, buckets)
        a = f.attrs
        a["format"] = "cifar_mpi metrics v1 (docs/metrics.md)"
        a["world_size"], a["strategy"], a["bucket_mb"], a["buckets"] = N, strategy, bucket_mb, len(buckets)
        a["overlap"], a["wire_dtype"], a["gradient_bytes"], a["batch_per_rank"] = overlap, "fp32", 1262888, 128
        a["meta.link_rate"], a["meta.hosts"], a["meta.ranks_per_host"] = "1gbit", "4", "1"
        for k, v in (("t_data", TD), ("t_comp", TC), ("t_update", TU), ("t_wait", comm_per_step),
                     ("t_comm", comm_per_step)):
            f[f"steps/{k}"] = np.full((STEPS, N), v)
        f["epochs/wall"] = np.array([STEPS * (TD + TC + TU + comm_per_step) * slow])
# overlap: bucket fc2+fc1 is ready after fc2, relu3, fc1's backward (5% of it) and done long before
# backward ends (f_bwd 65% of 60 ms); bucket conv2+conv1 starts when backward ends: only it is exposed.
FC, CONV = sum(FLOATS[:4]), sum(FLOATS[4:])
write("ring", "ring", 25.0, [FC + CONV], 0, ring(1262888, N))
write("naive", "naive", 25.0, FLOATS, 0, sum(mpi(4 * t) for t in FLOATS))
write("ring_overlap", "ring", 0.1, [FC, CONV], 1, ring(4 * CONV, N))
write("mpi_slow", "mpi", 25.0, [FC + CONV], 0, mpi(1262888), slow=1.3)
with h5py.File("sweep/ring_overlap.h5") as src, h5py.File("old/ring_overlap.h5", "w") as dst:  # older build
    for k in src.attrs:
        dst.attrs[k] = src.attrs[k]
    src.copy("steps", dst)
    src.copy("epochs", dst)
# The same overlap run, but its file says fc1's backward takes the whole step: bucket fc2+fc1 is
# ready only when backward ends, so both buckets are exposed (the model is read, not assumed).
with h5py.File("sweep/ring_overlap.h5") as src, h5py.File("late/ring_overlap.h5", "w") as dst:
    for k in src.attrs:
        dst.attrs[k] = src.attrs[k]
    for k in ("steps", "epochs", "model"):
        src.copy(k, dst)
    bwd = dst["model/layer_backward"][()]
    bwd[[n for n, _, _ in LAYERS].index("fc1")] = 1e3
    dst["model/layer_backward"][...] = bwd
with h5py.File("sweep/ring.h5") as src, h5py.File("bad/noattr.h5", "w") as dst:  # a bad input below
    for k in src.attrs:
        if k != "world_size":
            dst.attrs[k] = src.attrs[k]
    src.copy("steps", dst)
    src.copy("epochs", dst)
EOF

# --- fits, predictions, extrapolation -------------------------------------------------------------
"$PY" "$TOOL" sweep --out out --t-step-ms 60 --cluster-alpha-us 5 >out/stdout.txt 2>out/stderr.txt
rc=$?
if [[ $rc -ne 0 ]]; then
  fail "cost_model.py on the synthetic sweep: exit $rc" "$(tail -n 5 out/stderr.txt)"
else
  pass "cost_model.py on the synthetic sweep: exit 0"
fi

# One python for every check of the outputs: prints PASS:/FAIL: lines.
checks=$("$PY" - <<'EOF' 2>&1
import csv, os, re
def report(name, problems):
    print(f"PASS: {name}" if not problems else f"FAIL: {name}\n      " + "; ".join(problems))
try:
    fits = list(csv.DictReader(open("out/fits.csv")))
    preds = {r["file"].split("/")[-1]: r for r in csv.DictReader(open("out/predictions.csv"))}
    md = open("out/cost_model.md").read()
except OSError as e:
    print(f"FAIL: outputs of cost_model.py\n      {e}")
    raise SystemExit
bad = [f"{r['ranks']}: alpha {float(r['ring_alpha_s']):.4g} s, beta {float(r['ring_beta_s_per_byte']):.4g} s/B"
       for r in fits if abs(float(r["ring_alpha_s"]) / 40e-6 - 1) > 0.01
       or abs(float(r["ring_beta_s_per_byte"]) / (8 / 0.95e9) - 1) > 0.01]
report("fit recovers ring alpha 40 us and beta 8/0.95 Gbit/s within 1% (N=2, N=4, pooled)",
       bad + ([] if len(fits) == 3 else [f"{len(fits)} rows in fits.csv, want 3"]))
per_file = [r for r in fits if r["ranks"] != "pooled"]
bad = [f"{r['ranks']}: a {float(r['mpi_a_s']):.4g} s, b {float(r['mpi_b_s_per_byte']):.4g} s/B" for r in per_file
       if abs(float(r["mpi_a_s"]) / 60e-6 - 1) > 0.01 or abs(float(r["mpi_b_s_per_byte"]) / 9e-9 - 1) > 0.01]
report("fit recovers MPI_Allreduce a = 60 us, b = 9 ns/B within 1%", bad)
bad = []
for name, want in (("ring.h5", 1.0), ("naive.h5", 1.0), ("ring_overlap.h5", 1.0), ("mpi_slow.h5", 1 / 1.3)):
    if name not in preds:
        bad.append(f"{name} missing")
    elif abs(float(preds[name]["ratio"]) / want - 1) > 0.01:
        bad.append(f"{name} predicted/measured {float(preds[name]['ratio']):.4f}, want {want:.4f}")
flagged = [l.split("|")[1].strip() for l in md.splitlines() if l.startswith("| ") and "**!**" in l]
if flagged != ["mpi_slow.h5"]:
    bad.append(f"flagged rows {flagged}, want ['mpi_slow.h5']")
report("predictions: ring, naive, ring+overlap = measured within 1%; the 30% slower run flagged", bad)
# Closed form: overlap off, one bucket, N = 64, alpha 5 us, 10 Gbit/s: comm = 2*63*5 us +
# 2*63/64 * 1262888 B * 8 / 1e10 = 0.630 + 1.989 ms; E = 50% when 60 ms * b / 128 = comm: b = 5.59 -> 6.
bad = []
m = re.search(r"^\| 64 \| alpha 5 us \| off \| (\S+) \|", md, re.M)
if not m or m.group(1) != "6":
    bad.append(f"threshold row: {m.group(0) if m else 'none'}, want batch 6")
if not re.search(r"^\| 1024 \| ", md, re.M):
    bad.append("no N = 1024 row")
for p in ("out/cost_model.png", "out/bench_fit.png"):
    if not os.path.isfile(p) or os.path.getsize(p) < 10000:
        bad.append(f"{p} missing or tiny")
report("extrapolation: batch at 50% efficiency (N=64, alpha 5 us, 10 Gbit/s, overlap off) = 6; PNGs written", bad)
# PowerSGD at rank 4 on the pooled ring fit (alpha 40 us, 0.95 Gbit/s), N = 2, 3 ms of local work:
# 315722 floats, of which 234 bias floats + P 936 + Q 10988 are sent; the step's all-reduce is
# 10.71 ms plain, 3.57 compressed; break-even beta = (2 alpha + 3 ms) / (4 (315722 - 12158)) B.
bad = []
beta_even = (2 * 40e-6 + 3e-3) / (4 * (315722 - 12158))
want = f"{8 / beta_even / 1e9:.3g} Gbit/s"
m = re.search(r"^\| [^|]+ \| 2 \| (\S+) \| (\S+) \| 26\.0x \| ([^|]+) \| yes \|", md, re.M)
if not m:
    bad.append("no N = 2 row of the PowerSGD table")
else:
    if abs(float(m.group(1)) - 10.71) > 0.02 or abs(float(m.group(2)) - 3.57) > 0.02:
        bad.append(f"plain {m.group(1)} ms, compressed {m.group(2)} ms; want 10.71 and 3.57")
    if m.group(3).strip() != want:
        bad.append(f"pays below {m.group(3).strip()}, want {want}")
report("PowerSGD forecast: N = 2 all-reduce 10.71 ms plain, 3.57 ms compressed, pays below " + want, bad)
EOF
)
echo "$checks"
failures=$((failures + $(grep -c '^FAIL' <<<"$checks")))

"$PY" "$TOOL" sweep --out out --t-step-ms 60 --strict --no-plots >/dev/null 2>&1
rc=$?
if [[ $rc -eq 1 ]]; then
  pass "--strict exits 1 when a prediction is flagged"
else
  fail "--strict: exit $rc, want 1"
fi

# --- the model group: read from each file; an older file borrows it with --layer-times FILE.h5 ----
"$PY" "$TOOL" --bench sweep/bench-1gbit-np4.csv --metrics old/ring_overlap.h5 --layer-times sweep/ring.h5 \
  --out old --no-plots >old/stdout.txt 2>old/stderr.txt
rc=$?
"$PY" "$TOOL" --bench sweep/bench-1gbit-np4.csv --metrics late/ring_overlap.h5 --out late --no-plots \
  >late/stdout.txt 2>late/stderr.txt
rc2=$?
checks=$("$PY" - "$rc" "$rc2" <<'EOF' 2>&1
import csv, sys
def ratio(d):
    return float(next(csv.DictReader(open(f"{d}/predictions.csv")))["ratio"])
try:
    r_old, r_late = ratio("old"), ratio("late")
except (OSError, StopIteration, KeyError) as e:
    print(f"FAIL: model group runs (exit {sys.argv[1]}, {sys.argv[2]}): {e}")
    raise SystemExit
# late: both buckets exposed, c1 + c2 instead of c2 per step (numbers of the synthetic model)
ALPHA, BETA, N = 40e-6, 8 / 0.95e9, 4
ring = lambda S: 2 * (N - 1) * ALPHA + 2 * (N - 1) / N * S * BETA
c1, c2 = ring(4 * 296330), ring(4 * 19392)
want_late = (62e-3 + c1 + c2) / (62e-3 + c2)
print(("PASS" if sys.argv[1] == "0" and abs(r_old - 1) < 0.01 else "FAIL") +
      f": a file without model/ borrows --layer-times FILE.h5 (bucket plan recomputed): predicted/measured {r_old:.4f}")
print(("PASS" if sys.argv[2] == "0" and abs(r_late / want_late - 1) < 0.01 else "FAIL") +
      f": the file's layer times decide the overlap: late fc1 -> both buckets exposed, {r_late:.4f} (want {want_late:.4f})")
EOF
)
echo "$checks"
failures=$((failures + $(grep -c '^FAIL' <<<"$checks")))

# --- bad input ---------------------------------------------------------------------------------
expect_error() {  # expect_error NAME NEEDLE... -- ARGS...
  local name=$1 needles=() n missing=()
  shift
  while [[ $1 != -- ]]; do needles+=("$1"); shift; done
  shift
  timeout 60 "$PY" "$TOOL" --out out --no-plots "$@" >bad/out.txt 2>bad/err.txt
  local rc=$? lines first
  lines=$(wc -l <bad/err.txt)
  first=$(head -n 1 bad/err.txt)
  if [[ $rc -ne 2 ]]; then fail "$name: exit $rc, want 2" "$(head -n 5 bad/err.txt)"; return; fi
  if [[ $lines -ne 1 || $first != "cost_model.py: error: "* ]]; then
    fail "$name: stderr is not one 'cost_model.py: error:' line" "$(head -n 5 bad/err.txt)"
    return
  fi
  for n in "${needles[@]}"; do grep -qF -- "$n" bad/err.txt || missing+=("$n"); done
  if ((${#missing[@]})); then fail "$name: message does not name: ${missing[*]}" "$first"; else pass "$name: $first"; fi
}

expect_error "missing bench file" "bad/bench-1gbit-np2.csv" "no such file" -- --bench bad/bench-1gbit-np2.csv
cut -d, -f1-6 sweep/bench-1gbit-np2.csv >bad/bench-1gbit-np2.csv
expect_error "bench file without ring_time_us" "bad/bench-1gbit-np2.csv" "missing column 'ring_time_us'" -- \
  --bench bad/bench-1gbit-np2.csv
cp sweep/bench-1gbit-np2.csv bad/mybench.csv
expect_error "bench file named without its link" "bad/mybench.csv" "LINK=FILE" -- --bench bad/mybench.csv
expect_error "metrics file without world_size" "bad/noattr.h5" "missing attribute 'world_size'" -- \
  --bench sweep/bench-1gbit-np4.csv --metrics bad/noattr.h5
expect_error "metrics file without the model group" "old/ring_overlap.h5" "no group 'model'" "--layer-times" -- \
  --bench sweep/bench-1gbit-np4.csv --metrics old/ring_overlap.h5
expect_error "missing metrics file" "bad/none.h5" "no such file" -- \
  --bench sweep/bench-1gbit-np4.csv --metrics bad/none.h5

echo "$failures failure(s)"
[[ $failures -eq 0 ]]
