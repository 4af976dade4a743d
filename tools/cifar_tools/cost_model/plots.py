"""The two figures: bench_fit.png (each bench file's measured times against its fitted models, to
see where the alpha-beta line holds) and cost_model.png (extrapolated speedup and efficiency)."""
import math

import numpy as np

from .extrapolate import EXTRAP_NS


def plot_bench(plt, benches, path, gradient_bytes=None):
    """bench times and fits per bench file; a green line at the gradient's size if known"""
    k = len(benches)
    cols = min(k, 3)
    rows = math.ceil(k / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.8 * rows), squeeze=False)
    for ax, b in zip(axes.flat, sorted(benches, key=lambda b: (b.rate or 0, b.key, b.n, b.rph or 0))):
        S = b.sizes
        xs = np.geomspace(S.min(), S.max(), 200)
        ax.loglog(S, b.mpi_s * 1e6, "o", color="C0", ms=4, label="MPI_Allreduce (bench)")
        ax.loglog(S, b.ring_s * 1e6, "s", color="C1", ms=4, label="ring (bench)")
        ax.loglog(xs, (b.mpi_a + b.mpi_b * xs) * 1e6, "-", color="C0",
                  label=f"a + bS: a={b.mpi_a * 1e6:.3g}us, 8/beta_eff="
                        f"{8 / (b.mpi_b * b.n / (2 * (b.n - 1))) / 1e9 if b.mpi_b else float('inf'):.3g} Gbit/s")
        ax.loglog(xs, b.t_ring(xs) * 1e6, "--", color="C1",
                  label=f"ring: alpha={b.alpha * 1e6:.3g}us, "
                        f"8/beta={8 / b.beta / 1e9 if b.beta else float('inf'):.3g} Gbit/s")
        for lo_hi in (S[b.fit_sel].min(), S[b.fit_sel].max()):
            ax.axvline(lo_hi, color="grey", lw=0.6, ls=":")  # the fitted range
        if gradient_bytes:
            ax.axvline(gradient_bytes, color="green", lw=0.8, alpha=0.6)
            ax.text(gradient_bytes, ax.get_ylim()[0] * 1.5, " gradient", color="green", fontsize=7, rotation=90,
                    va="bottom")
        ax.set_title(b.label())
        ax.set_xlabel("bytes per rank")
        ax.set_ylabel("time per call (us)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[k:]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_extrap(plt, curves, alphas, args, path):
    """speedup (top) and efficiency (bottom) against N, one column per alpha"""
    fig, axes = plt.subplots(2, len(alphas), figsize=(6 * len(alphas), 8.5), sharex=True, squeeze=False)
    ns = np.array(EXTRAP_NS)
    colors = {r_lbl: f"C{i}" for i, (r_lbl, _) in enumerate(args.rates)}
    for j, (a_lbl, a) in enumerate(alphas):
        ax_s, ax_e = axes[0, j], axes[1, j]
        ax_s.loglog(ns, ns, "k:", lw=1, label="ideal S = N")
        for r_lbl, r in args.rates:
            for ov in (False, True):
                eff = np.array([e for _, e in curves[(a_lbl, a, r_lbl, r, ov)]])
                kw = dict(color=colors[r_lbl], ls="-" if ov else "--", marker="o" if ov else "s", ms=4,
                          label=f"{r_lbl}, overlap {'on' if ov else 'off'}")
                ax_s.loglog(ns, ns * eff, **kw)
                ax_e.semilogx(ns, 100 * eff, **kw)
        ax_e.axhline(50, color="red", lw=0.8)
        ax_e.text(ns[0], 51, "50%", color="red", fontsize=8)
        ax_s.set_title(a_lbl)
        ax_s.set_ylabel("speedup S(N) = N T1 / T_N")
        ax_e.set_ylabel("efficiency T1 / T_N (%)")
        ax_e.set_xlabel("ranks N (weak scaling, per-rank batch %d)" % args.batch)
        ax_e.set_ylim(0, 105)
        for ax in (ax_s, ax_e):
            ax.set_xticks(ns)
            ax.set_xticklabels([str(n) for n in ns])
            ax.grid(True, which="both", alpha=0.3)
        ax_s.legend(fontsize=8)
    fig.suptitle("cifar_mpi cost model: ring all-reduce, extrapolated", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
