"""The tables: printed and collected into cost_model.md, with fits.csv and predictions.csv beside
them. One function per section, so each table's columns sit next to the numbers they show."""
import csv
import os
import sys

from .common import PROG, fmt_rate, link_key, warn
from .extrapolate import EXTRAP_NS, THRESHOLD_NS, batch_threshold, rate_threshold
from .model import plan_buckets
from .step_model import find_bench, predict


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def us(x):
    return f"{x * 1e6:.2f}"


def gbps(beta):
    return f"{8.0 / beta / 1e9:.4g}" if beta > 0 else "inf"


class Report:
    """Markdown sections, printed as they are added and written to cost_model.md at the end."""

    def __init__(self):
        self.md = ["# Cost model of cifar_mpi (tools/cost_model.py)", ""]

    def section(self, title, body):
        self.md.extend([f"## {title}", "", body, ""])
        print(f"\n## {title}\n\n{body}")

    def write(self, path):
        with open(path, "w") as f:
            f.write("\n".join(self.md) + "\n")


def fits(rep, benches, pooled, args, out_dir):
    """Per bench file and pooled per link; fits.csv."""
    rows = []
    for b in sorted(benches, key=lambda b: (b.rate or 0, b.key, b.n, b.rph or 0)):
        mpi_beta = b.mpi_b * b.n / (2 * (b.n - 1)) if b.mpi_b > 0 else 0.0
        nominal = fmt_rate(b.rate) if b.rate else "-"
        rows.append([b.label(), nominal, int(b.fit_sel.sum()),
                     us(b.alpha), gbps(b.beta), f"{100 * b.ring_err:.0f}% / {100 * b.ring_med:.0f}%",
                     us(b.mpi_a), gbps(mpi_beta), f"{100 * b.mpi_err:.0f}% / {100 * b.mpi_med:.0f}%"])
    rep.section("Fitted alpha-beta per bench file (link, N)",
                "ring: t = 2(N-1) alpha + 2(N-1)/N S beta; mpi: t = a + b S with b = 2(N-1)/N beta_eff. "
                f"Fits over sizes {args.fit_lo:g}..{args.fit_hi:g} B, least squares of ln(fit / bench); err = "
                "|fit - bench| / bench over those rows, largest / median.\n\n" + md_table(
                    ["bench", "nominal rate", "rows", "ring alpha (us)", "ring 8/beta (Gbit/s)", "ring err max / med",
                     "mpi a (us)", "mpi 8/beta_eff (Gbit/s)", "mpi err max / med"], rows))
    rows = []
    for k, pr in sorted(pooled.items(), key=lambda kv: (kv[1].rate or 0, kv[0])):
        goodput = f"{100 * (8 / pr.beta) / pr.rate:.0f}%" if pr.rate and pr.beta > 0 else "-"
        rows.append([pr.link, ",".join(map(str, pr.ns)), us(pr.alpha), gbps(pr.beta), goodput,
                     f"{100 * pr.err:.0f}% / {100 * pr.med:.0f}%"])
    with open(os.path.join(out_dir, "fits.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["link", "ranks", "ranks_per_host", "file", "rows", "ring_alpha_s", "ring_beta_s_per_byte",
                    "ring_max_rel_err", "mpi_a_s", "mpi_b_s_per_byte", "mpi_max_rel_err"])
        for b in benches:
            w.writerow([b.link, b.n, b.rph or "", b.path, int(b.fit_sel.sum()), f"{b.alpha:.9g}", f"{b.beta:.9g}",
                        f"{b.ring_err:.6g}", f"{b.mpi_a:.9g}", f"{b.mpi_b:.9g}", f"{b.mpi_err:.6g}"])
        for pr in pooled.values():
            w.writerow([pr.link, "pooled", "", "", "", f"{pr.alpha:.9g}", f"{pr.beta:.9g}", f"{pr.err:.6g}",
                        "", "", ""])
    rep.section("Ring alpha-beta per link (all N pooled)",
                md_table(["link", "N", "alpha (us)", "8/beta (Gbit/s)", "of nominal rate", "err max / med"], rows))


def predictions(rep, runs, benches, pooled, args, out_dir):
    """Predicted vs measured wall per run; predictions.csv. Returns the number flagged."""
    baselines = [r for r in runs if r.n == 1]
    preds = []
    for r in sorted(runs, key=lambda r: (link_key(r.link), r.n, r.strategy, r.overlap, r.bucket_mb, r.name)):
        bench, how = find_bench(benches, r) if r.n > 1 else (None, "")
        p = predict(r, bench, pooled.get(link_key(r.link)), args.compute, baselines)
        if how:
            p.note = (p.note or "") + how + "; "
        preds.append(p)
    rows, flagged = [], 0
    for p in preds:
        r = p.run
        cfg = [r.name, r.link, r.n, r.strategy, f"{r.bucket_mb:g} ({len(r.model.buckets)})",
               "on" if r.overlap else "off", r.n_steps]
        if p.skip:
            rows.append(cfg + ["-"] * 9 + [f"skipped: {p.skip}"])
            warn(f"{r.path}: {p.skip}")
            continue
        flag = abs(p.ratio - 1) > args.tolerance
        flagged += flag
        rows.append(cfg + [p.bench_label, f"{p.compute:.3f}", f"{1e3 * p.exposed / r.n_steps:.2f}",
                           f"{1e3 * p.exposed_tab / r.n_steps:.2f}", f"{1e3 * p.meas_wait_min / r.n_steps:.2f}",
                           f"{p.pred:.3f}", f"{p.meas:.3f}", f"{p.ratio:.3f}" + (" **!**" if flag else ""),
                           f"{p.ratio_tab:.3f}", p.note.rstrip("; ")])
    f_bwd = sorted({f"{r.model.timing.f_bwd:.3f}" for r in runs})
    rep.section("Predicted vs measured training wall time",
                f"Compute per step: {args.compute} (t_data + t_comp + t_update); f_bwd = {', '.join(f_bwd)} of "
                f"t_comp is backward (per-layer times of each run's model/ group"
                f"{', --layer-times ' + args.layer_times if args.layer_times else ''}). Buckets: each run's own "
                f"plan (model/bucket_floats). comm/step: exposed communication per step, modelled with the "
                f"alpha-beta fit (fit) or with the bench's own times interpolated (bench); meas = min over ranks "
                f"of t_wait per step (the exposed wait of the last rank to arrive, which waits for no slower rank). "
                f"pred wall and pred/meas use the fit; **!** = off by more than {100 * args.tolerance:.0f}%; "
                f"pred/meas (bench) tells the error of the step model alone.\n\n" + md_table(
                    ["file", "link", "N", "strategy", "bucket MB (n)", "overlap", "steps", "bench", "compute (s)",
                     "comm/step fit (ms)", "comm/step bench (ms)", "comm/step meas (ms)", "pred wall (s)",
                     "meas wall (s)", "pred/meas", "pred/meas (bench)", "note"], rows))
    write_predictions_csv(preds, os.path.join(out_dir, "predictions.csv"))
    if flagged:
        print(f"{PROG}: {flagged} prediction(s) off by more than {100 * args.tolerance:.0f}%", file=sys.stderr)
    return flagged


def write_predictions_csv(preds, path):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "link", "ranks", "strategy", "bucket_mb", "buckets", "overlap", "steps", "bench",
                    "compute_s", "exposed_comm_s", "pred_wall_s", "meas_wall_s", "ratio", "meas_wait_min_s",
                    "exposed_comm_bench_s", "pred_wall_bench_s", "ratio_bench", "note"])
        for p in preds:
            r = p.run
            if p.skip:
                w.writerow([r.path, r.link, r.n, r.strategy, r.bucket_mb, "", int(r.overlap), r.n_steps, "",
                            "", "", "", f"{r.wall:.6f}", "", "", "", "", "", "skipped: " + p.skip])
            else:
                w.writerow([r.path, r.link, r.n, r.strategy, r.bucket_mb, len(p.buckets), int(r.overlap),
                            r.n_steps, p.bench_label, f"{p.compute:.6f}", f"{p.exposed:.6f}", f"{p.pred:.6f}",
                            f"{p.meas:.6f}", f"{p.ratio:.6f}", f"{p.meas_wait_min:.6f}", f"{p.exposed_tab:.6f}",
                            f"{p.pred_tab:.6f}", f"{p.ratio_tab:.6f}", p.note.rstrip("; ")])


def extrapolation(rep, ex, args):
    """ex: T1, B1, scale, t1_src, alpha_src, alpha_fit, alphas, curves, model (cli.extrapolate)."""
    model = ex.model
    head = (f"Weak scaling, per-rank batch {args.batch}, ring all-reduce. T1 = {1e3 * ex.T1:.2f} ms per step "
            f"from {ex.t1_src}" + (f", scaled x{ex.scale:g} to batch {args.batch}" if ex.scale != 1 else "") +
            f"; backward {1e3 * ex.B1:.2f} ms (f_bwd {model.timing.f_bwd:.3f}, tensors and layer times of "
            f"{model.source}). beta = 8 / link rate (nominal). alpha: {ex.alpha_src}; "
            f"and {args.cluster_alpha_us:g} us, a cluster-like per-message latency (kernel-bypass or "
            f"tuned TCP on a datacenter network; an assumption, not measured here). Overlap off: one "
            f"bucket of {model.gradient_floats * 4:,} B; overlap on: {args.extrap_bucket_mb:g} MB buckets "
            f"({len(plan_buckets(model.tensors, args.extrap_bucket_mb, False))}). Cells: speedup S = N T1 / T_N "
            f"(efficiency E = T1 / T_N).")
    rep.section("Extrapolation: assumptions", head)
    for a_lbl, a in ex.alphas:
        hdr = ["N"] + [f"{r_lbl} overlap {'on' if ov else 'off'}" for r_lbl, _ in args.rates for ov in (False, True)]
        rows = []
        for i, n in enumerate(EXTRAP_NS):
            if n < 8:
                continue
            row = [n]
            for r_lbl, r in args.rates:
                for ov in (False, True):
                    _, e = ex.curves[(a_lbl, a, r_lbl, r, ov)][i]
                    row.append(f"{n * e:.1f} ({100 * e:.0f}%)")
            rows.append(row)
        rep.section(f"Extrapolation, {a_lbl}: speedup (efficiency)", md_table(hdr, rows))
    rows = []
    for n in THRESHOLD_NS:
        for a_lbl, a in ex.alphas:
            for ov in (False, True):
                row = [n, a_lbl.split(" (")[0], "on" if ov else "off"]
                for _, r in args.rates:
                    row.append(batch_threshold(n, ex.T1, ex.B1, args.batch, a, r, ov, args.extrap_bucket_mb, model))
                row.append(rate_threshold(n, ex.T1, ex.B1, a, ov, args.extrap_bucket_mb, model))
                rows.append(row)
    rep.section("Where efficiency falls below 50%",
                f"Per-rank batch below which E < 50% (compute linear in the batch: C(b) = T1 b / {args.batch}), "
                f"at each link rate; and the link rate below which E < 50% at batch {args.batch}. "
                "'never (alpha-bound)': the 2(N-1) alpha latency alone exceeds the compute.\n\n" +
                md_table(["N", "alpha", "overlap"] + [f"batch @ {r_lbl}" for r_lbl, _ in args.rates] +
                         [f"link rate @ batch {args.batch}"], rows))


def compression(rep, pooled, args):
    """PowerSGD's forecast per fitted link (compression.py): the all-reduce per step with and
    without it, at N = 2 and the link's other N, and the link rate below which it pays."""
    from .compression import forecast
    rows = []
    for k, pr in sorted(pooled.items(), key=lambda kv: (kv[1].rate or 0, kv[0])):
        for n in sorted(set(pr.ns) | {2}):
            f = forecast(pr.alpha, pr.beta, n, rank=args.compress_rank, work_s=args.powersgd_work_ms * 1e-3)
            rows.append([pr.link, n, f"{f['plain'] * 1e3:.2f}", f"{f['compressed'] * 1e3:.2f}",
                         f"{f['floats'] / f['sent']:.1f}x", fmt_rate(f["breakeven_bps"]),
                         "yes" if f["compressed"] < f["plain"] else "no"])
    rep.section(f"PowerSGD rank {args.compress_rank}: the all-reduce per step with and without compression",
                "Ring fits per link; compressed = the uncompressed tensors + P, then Q (two dependent all-reduces: "
                f"latency twice) + {args.powersgd_work_ms:g} ms of local work (--powersgd-work-ms; cifar_mpi times "
                "it at start-up and logs its own forecast). fp32 on the wire.\n\n" + md_table(
                    ["link", "N", "plain (ms)", "compressed (ms)", "fewer bytes", "pays below", "pays here"], rows))
