"""PyTorch's side of ResNet-20's fidelity check: STEPS SGD steps of the reference ResNet-20
(tools/cifar_tools/reference_resnet20.py) from given weights, over the first STEPS global batches of
a CIFAR-10 folder in file order (what `cifar_mpi --model resnet20 --no-shuffle` trains), on NRANKS
simulated DDP ranks, then the largest difference from a weights file cifar_mpi saved: every
parameter and every BatchNorm running mean and variance.

  python3 resnet20_vs_torch.py init DIR SEED OUT.h5
      writes the standard initialisation (kaiming_normal_, BatchNorm 1/0, torch.manual_seed(SEED))
      as a weights file; DIR is not read (the call has torch_steps.py's shape)
  python3 resnet20_vs_torch.py compare DIR INIT.h5 OURS.h5 STEPS BATCH NRANKS [LR MOMENTUM]
                               [--threads T] [--write-reference OUT.h5]
      replays the steps in PyTorch and prints "max error E of tolerance T (TENSOR)" for the tensor
      whose error is the largest share of its tolerance; exit 1 when E > T anywhere, or when the
      steps moved no parameter by 10 tolerances (a comparison that could not fail)
  python3 resnet20_vs_torch.py replay DIR INIT.h5 OUT.h5 STEPS BATCH NRANKS [LR MOMENTUM] [--threads T]
      only writes PyTorch's weights after the steps (a weights file like cifar_mpi's --save-weights:
      compare it against PyTorch itself, or hand it to the C++ side's tests)
  python3 resnet20_vs_torch.py selfcheck DIR INIT.h5 STEPS BATCH NRANKS [LR MOMENTUM]
      PyTorch against itself computing differently (float64, its native convolutions instead of
      oneDNN's, 2 threads): the error of each as a share of the tolerance, which a fair tolerance
      keeps well below 1

BATCH is the global batch (cifar_mpi's --batch-size times NRANKS). Float32, 1 thread unless
--threads; LR 0.01 and MOMENTUM 0.9 by default, no weight decay, SGD v = m v + g; w -= lr v
(torch.optim.SGD); normalisation (x/255 - 0.5)/0.5 and the data as tests/cli/torch_steps.py reads
them; loss the mean cross-entropy over each rank's share.

Data parallelism as PyTorch DDP with a DistributedSampler over the file order, simulated in one
process: rank r of N takes positions r, r+N, r+2N, ... of each global batch (B/N images); each
rank's replica runs forward and backward over its own share, BatchNorm in training mode over that
share alone; the ranks' gradients are averaged (DDP's all-reduce of g/N) and one SGD update applied
to the shared weights; the BatchNorm running statistics that continue are rank 0's (DDP's
broadcast_buffers copies rank 0's buffers to every rank before each forward). NRANKS=1 is plain
training on the whole batch.

Tolerance per tensor (M = the largest |torch| of that tensor): after 1 step 1e-5 max(M, 1); after 2
or more 5e-3 max(M, 0.05). BatchNorm amplifies rounding step by step, so after several steps only a
loose bound is fair; and a gradient through BatchNorm is a sum that cancels, so its rounding error
is ~1e-3 of itself: the BatchNorm biases, which start at zero and after one step are 1e-4 to 3e-3,
differ between PyTorch in float64 and float32 by up to 7e-7 (300 times 1e-5 M), hence the floor
after 1 step too. PyTorch against itself (`selfcheck`: float64; its native convolutions instead of
oneDNN's; 2 threads instead of 1), PyTorch 1.13 on an AVX2 EPYC, initial weights of seed 3, batch
128; the largest error as a share of its tolerance (the error):
    data               NRANKS  1 step               3 steps              5 steps
    fake (5 x 128)       1     0.07 / 0.17 (1.7e-6)  0.03 / 0.06 (1.5e-5)  0.14 / 0.22 (5.4e-5)
    fake (5 x 128)       2     0.22 / 0.22 (2.2e-6)  0.04 / 0.04 (1.0e-5)  0.17 / 0.23 (5.8e-5)
    CIFAR-10             1     0.32 / 0.28 (3.4e-6)  0.26 / 0.14 (6.4e-5)  1.25 / 0.85 (3.1e-4)
    CIFAR-10             2     0.17 / 0.11 (1.8e-6)  0.10 / 0.15 (3.8e-5)  0.58 / 0.69 (1.7e-4)
(float64 / native convolutions; 2 threads: bit for bit the same as 1 thread, every case). So up to
3 steps PyTorch's own alternatives stay within a third of the tolerance, and an independent float32
implementation, whose rounding adds to PyTorch's, within about two thirds; beyond 3 steps on real
images even float64 against float32 exceeds it (bn1.bias), which is why the checks stop at 3.

Needs torch, numpy and h5py.
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
sys.path.insert(0, HERE)
from cifar_tools.h5files import FileError, read_weights, write_arrays  # noqa: E402
from cifar_tools.reference_resnet20 import (ResNet20, initial_weights, load_arrays,  # noqa: E402
                                            state_arrays, weight_shapes)
from torch_steps import train_records  # noqa: E402  (the program's normalisation and file order)

PROG = "resnet20_vs_torch"
TIGHT, TIGHT_FLOOR = 1e-5, 1.0   # after 1 step
LOOSE, LOOSE_FLOOR = 5e-3, 0.05  # after 2 or more
MUST_MOVE = 10  # some parameter must move by this many tolerances, or the check could not fail


def tolerance(steps, largest):
    """What ours may differ by in a tensor whose largest |torch| is `largest`, after `steps` steps."""
    return TIGHT * max(largest, TIGHT_FLOOR) if steps == 1 else LOOSE * max(largest, LOOSE_FLOOR)


def replay(init, x, y, steps, batch, nranks, lr, momentum, dtype=torch.float32):
    """{name: float32 array}: the weights and running statistics after `steps` DDP steps (computed
    in dtype: float64 to measure float32's own rounding)."""
    net = load_arrays(ResNet20(), init).to(dtype).train()
    replica = ResNet20().to(dtype).train()  # each rank's replica in turn: same weights, rank 0's buffers
    x = x.to(dtype)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    for s in range(steps):
        xb, yb = x[s * batch:(s + 1) * batch], y[s * batch:(s + 1) * batch]
        total, rank0_buffers = None, None
        for r in range(nranks):
            replica.load_state_dict(net.state_dict())
            replica.zero_grad(set_to_none=True)
            F.cross_entropy(replica(xb[r::nranks]), yb[r::nranks]).backward()
            # DDP divides each rank's gradient by N before the all-reduce sums them
            grads = [p.grad / nranks for p in replica.parameters()]
            total = grads if total is None else [a + g for a, g in zip(total, grads)]
            if r == 0:
                rank0_buffers = {k: b.clone() for k, b in replica.named_buffers()}
        for p, g in zip(net.parameters(), total):
            p.grad = g
        opt.step()
        with torch.no_grad():
            for k, b in net.named_buffers():
                b.copy_(rank0_buffers[k])
    return state_arrays(net)


def judge(steps, init, ours, want):
    """(rows, moved): rows [(error / tolerance, error, tolerance, name)] worst first, and how many
    tolerances the steps moved the parameter that moved most."""
    rows, moved = [], 0.0
    parameters = set(dict(ResNet20().named_parameters()))
    for name, w in want.items():
        w64 = w.astype(np.float64)
        tol = tolerance(steps, float(np.max(np.abs(w64))))
        err = float(np.max(np.abs(ours[name].astype(np.float64) - w64)))
        rows.append((err / tol if tol > 0 else (0.0 if err == 0 else np.inf), err, tol, name))
        if name in parameters and tol > 0:
            moved = max(moved, float(np.max(np.abs(w64 - init[name]))) / tol)
    return sorted(rows, reverse=True), moved


# PyTorch computing the same steps differently: what any other correct float32 implementation may
# differ by (float64: float32's own rounding; no-mkldnn: other convolution kernels; 2 threads)
VARIANTS = {"float64": dict(dtype=torch.float64), "no-mkldnn": dict(mkldnn=False), "2 threads": dict(threads=2)}


def run_replay(a, init, x, y, dtype=torch.float32, mkldnn=True, threads=None):
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        with torch.backends.mkldnn.flags(enabled=mkldnn):
            return replay(init, x, y, a.steps, a.batch, a.nranks, a.lr, a.momentum, dtype)
    finally:
        torch.set_num_threads(before)


def positive(text):
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def parse(argv):
    ap = argparse.ArgumentParser(prog=f"python3 {PROG}.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("init", help="write the initial weights")
    p.add_argument("data_dir", metavar="DIR")
    p.add_argument("seed", metavar="SEED", type=int)
    p.add_argument("out", metavar="OUT.h5")
    for mode, target in (("compare", "OURS.h5"), ("replay", "OUT.h5"), ("selfcheck", None)):
        p = sub.add_parser(mode, help=f"{mode} (see above)")
        p.add_argument("data_dir", metavar="DIR")
        p.add_argument("init", metavar="INIT.h5")
        if target:
            p.add_argument("target", metavar=target)
        p.add_argument("steps", metavar="STEPS", type=positive)
        p.add_argument("batch", metavar="BATCH", type=positive, help="the global batch")
        p.add_argument("nranks", metavar="NRANKS", type=positive)
        p.add_argument("lr", metavar="LR", type=float, nargs="?", default=0.01)
        p.add_argument("momentum", metavar="MOMENTUM", type=float, nargs="?", default=0.9)
        p.add_argument("--threads", type=positive, default=1, help="PyTorch's threads (default 1)")
        if mode == "compare":
            p.add_argument("--write-reference", metavar="OUT.h5", help="also write PyTorch's weights here")
    return ap.parse_args(argv)


def main(argv=None):
    a = parse(argv)
    torch.set_num_threads(getattr(a, "threads", 1))
    try:
        if a.mode == "init":
            write_arrays(a.out, initial_weights(a.seed))
            return 0
        if a.batch % a.nranks:
            raise FileError(f"BATCH {a.batch} is not a multiple of NRANKS {a.nranks}")
        shapes = weight_shapes()
        init = read_weights(a.init, shapes)
        ours = read_weights(a.target, shapes) if a.mode == "compare" else None
        need = a.steps * a.batch
        try:
            x, y = train_records(a.data_dir, need)
        except (OSError, ValueError) as e:
            raise FileError(f"CIFAR-10 folder {a.data_dir}: {str(e).splitlines()[0]}") from None
        if len(y) < need:
            raise FileError(f"CIFAR-10 folder {a.data_dir}: {len(y)} training records, {a.steps} steps of "
                            f"{a.batch} need {need}")
        want = run_replay(a, init, x, y)
        if a.mode == "selfcheck":
            for variant, how in VARIANTS.items():
                rows, _ = judge(a.steps, init, run_replay(a, init, x, y, **how), want)
                share, err, tol, name = rows[0]
                print(f"{variant:10s} max error {err:.3g} of tolerance {tol:.3g} ({name}): {share:.3g} of it")
            return 0
        out = a.target if a.mode == "replay" else a.write_reference
        if out:
            write_arrays(out, want)
        if a.mode == "replay":
            return 0
    except FileError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    rows, moved = judge(a.steps, init, ours, want)
    share, err, tol, name = rows[0]
    print(f"max error {err:.3g} of tolerance {tol:.3g} ({name}); {a.steps} step(s), {a.nranks} rank(s), "
          f"parameters moved up to {moved:.3g} tolerances")
    failed = [r for r in rows if r[0] > 1]
    if failed:
        print(f"{PROG}: {len(failed)} of {len(rows)} tensors beyond their tolerance: "
              + ", ".join(f"{n} {e:.3g} > {t:.3g}" for _, e, t, n in failed[:5]), file=sys.stderr)
        return 1
    if moved < MUST_MOVE:
        print(f"{PROG}: the steps moved no parameter by {MUST_MOVE} tolerances: the comparison cannot fail",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
