"""Extrapolation to 2..1024 ranks (weak scaling, fixed per-rank batch) at nominal link rates: the
step time T_N = T1 + exposed ring communication at N, speedup N T1 / T_N, efficiency T1 / T_N, and
where efficiency falls to 50% (per-rank batch, link rate). It needs one model (tensors and layer
times): --layer-times FILE.h5, else the N=1 run that gives T1, else the run of the smallest N."""
import math

from .common import fmt_rate, warn
from .fit import ring_time
from .model import Model, plan_buckets
from .step_model import exposed_comm

EXTRAP_NS = [2 ** k for k in range(1, 11)]  # 2 .. 1024
THRESHOLD_NS = (64, 256, 1024)


def pick_model(override, runs):
    """The model of the extrapolation: --layer-times FILE.h5, the N=1 run of the most steps, else the
    run of the smallest N (then most steps); None without either."""
    if isinstance(override, Model):
        return override
    if not runs:
        return None
    return min(runs, key=lambda r: (r.n, -r.n_steps)).model


def baseline(args, runs, model):
    """(T1, B1, batch, source): compute and backward per step at N=1, from --t-step-ms or the N=1
    run of the most steps (steps after the first); None without either."""
    if args.t_step_ms:
        T1 = args.t_step_ms * 1e-3
        return T1, model.timing.f_bwd * T1, args.batch, f"--t-step-ms {args.t_step_ms:g}"
    base = [r for r in runs if r.n == 1]
    if not base:
        return None
    b = max(base, key=lambda r: r.n_steps)
    sl = slice(1, None) if b.n_steps > 1 else slice(None)
    T1 = float(b.compute()[sl].mean())
    B1 = model.timing.f_bwd * float(b.steps["t_comp"][sl].mean())
    return T1, B1, b.batch, f"{b.name} (mean of steps 2..{b.n_steps}, batch {b.batch})"


def fitted_alpha(args, pooled):
    """(alpha, source): --alpha-us, else the pooled ring alpha of the fastest shaped link."""
    if args.alpha_us:
        return args.alpha_us * 1e-6, f"--alpha-us {args.alpha_us:g}"
    shaped = [p for p in pooled.values() if p.rate]
    if shaped:
        best = max(shaped, key=lambda p: p.rate)
        return best.alpha, f"ring fit of the fastest shaped link, {best.link}"
    best = min(pooled.values(), key=lambda p: p.beta)
    warn(f"no bench file of a shaped link (bench-<rate>-np<N>.csv): extrapolating with the alpha of {best.link}")
    return best.alpha, f"ring fit of {best.link} (no shaped link among the bench files)"


def extrap_step(n, T1, B1, alpha, rate, overlap, bucket_mb, model, batch_scale=1.0):
    """(step time, efficiency) of weak scaling at n ranks, ring all-reduce, fp32; overlap off: one
    bucket (the whole gradient), on: buckets of bucket_mb."""
    C, B = T1 * batch_scale, B1 * batch_scale
    if n == 1:
        return C, 1.0
    beta = 8.0 / rate
    buckets = plan_buckets(model.tensors, bucket_mb if overlap else 1e6, False)
    comm = [ring_time(fl * 4, n, alpha, beta) for fl, _ in buckets]
    ready = [model.timing.ready[layer] for _, layer in buckets]
    T = C + exposed_comm(comm, ready, B, overlap)
    return T, C / T


def curves(T1, B1, alphas, args, model):
    """{(alpha label, alpha, rate label, rate, overlap): [(T_N, E_N) for N in EXTRAP_NS]}"""
    out = {}
    for a_lbl, a in alphas:
        for r_lbl, r in args.rates:
            for ov in (False, True):
                out[(a_lbl, a, r_lbl, r, ov)] = [extrap_step(n, T1, B1, a, r, ov, args.extrap_bucket_mb, model)
                                                 for n in EXTRAP_NS]
    return out


def bisect_log(f, lo, hi, iters=80):
    """f increasing in x; x where f(x) = 0 between lo and hi (log bisection)."""
    a, b = math.log(lo), math.log(hi)
    for _ in range(iters):
        m = 0.5 * (a + b)
        if f(math.exp(m)) < 0:
            a = m
        else:
            b = m
    return math.exp(b)


def batch_threshold(n, T1, B1, batch0, alpha, rate, overlap, bucket_mb, model):
    def g(b):
        return extrap_step(n, T1, B1, alpha, rate, overlap, bucket_mb, model, b / batch0)[1] - 0.5
    if g(1.0) >= 0:
        return "<= 1"
    if g(1e7) < 0:
        return "> 1e7"
    return f"{math.ceil(bisect_log(g, 1.0, 1e7))}"


def rate_threshold(n, T1, B1, alpha, overlap, bucket_mb, model):
    def g(r):
        return extrap_step(n, T1, B1, alpha, r, overlap, bucket_mb, model)[1] - 0.5
    if g(1e16) < 0:
        return "never (alpha-bound)"
    if g(1e6) >= 0:
        return "< 1 Mbit/s"
    return fmt_rate(bisect_log(g, 1e6, 1e16))

