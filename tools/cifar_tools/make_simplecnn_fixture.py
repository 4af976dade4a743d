"""Writes the PyTorch fixture of the C++ tests (simplecnn_steps.h5): what PyTorch computes for the
reference network in two SGD steps on one batch of 4 random images, so the tests check every layer
and the whole step against an implementation that is not ours. Its layout is in
tests/fixture_reader.hpp: input, labels, init/, step1/act, step1/dact, step1/grad, step1/loss,
step1/after, step2/grad, step2/loss, step2/after.

  PYTHONPATH=tools /usr/bin/python3 -m cifar_tools.make_simplecnn_fixture OUT.h5 [--seed N]
  PYTHONPATH=tools /usr/bin/python3 -m cifar_tools.make_simplecnn_fixture OUT.h5 --from OLD.h5

Float32, one thread. torch.manual_seed(seed), then PyTorch's default initialisation of the network
(cifar_tools.reference_cnn), then the input (torch.randn [4,3,32,32]) and the labels
(torch.randint(0, 10, [4])): seed 1234 gives labels 8 4 8 4, which the tests expect. Both steps
use that batch; loss = mean cross-entropy; torch.optim.SGD(lr 0.01, momentum 0.9): v = mu v + g,
w -= lr v, so step 2 checks the momentum buffer.

--from OLD.h5 takes init/, input and labels from an existing fixture instead, recomputes the rest,
and prints the largest difference from OLD.h5's datasets (exit 1 above 1e-5 of their scale): a
check that this program computes what OLD.h5 holds.

Needs torch, h5py and numpy (Debian: python3-torch python3-h5py python3-numpy)."""
import argparse
import sys

from .h5files import FileError, read_arrays, write_arrays

PROG = "make_simplecnn_fixture"
PARAMS = ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias",
          "fc2.weight", "fc2.bias"]
ACTIVATIONS = ["conv1_out", "relu1", "pool1", "conv2_out", "relu2", "pool2", "flat", "fc1_out", "relu3",
               "logits"]
BATCH, LR, MOMENTUM, SEED = 4, 0.01, 0.9, 1234
TOLERANCE = 1e-5  # of --from: float32 summation order differs between builds by ~1e-7 relative


def forward(net, x, torch):
    """The network's forward pass, every activation kept (with its gradient) in forward order."""
    acts = {}

    def keep(name, t):
        t.retain_grad()
        acts[name] = t
        return t

    h = keep("conv1_out", net.conv1(x))
    h = keep("pool1", net.pool(keep("relu1", torch.relu(h))))
    h = keep("conv2_out", net.conv2(h))
    h = keep("pool2", net.pool(keep("relu2", torch.relu(h))))
    h = keep("fc1_out", net.fc1(keep("flat", torch.flatten(h, 1))))
    keep("logits", net.fc2(keep("relu3", torch.relu(h))))
    return acts


def two_steps(init, x, y):
    """{dataset path: float32 array} of the two steps from init weights on batch (x, y)."""
    import torch
    import torch.nn.functional as F

    from .reference_cnn import SimpleCNN

    net = SimpleCNN()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in init.items()})
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    out = {}
    for step in (1, 2):
        opt.zero_grad()
        acts = forward(net, x, torch)
        if not torch.equal(acts["logits"], net(x)):  # the recorded pass is the network's own
            raise AssertionError("forward() no longer matches reference_cnn.SimpleCNN.forward")
        loss = F.cross_entropy(acts["logits"], y)
        loss.backward()
        g = f"step{step}"
        if step == 1:
            for a in ACTIVATIONS:
                out[f"{g}/act/{a}"] = acts[a].detach().numpy().copy()
                out[f"{g}/dact/{a}"] = acts[a].grad.numpy().copy()
        params = dict(net.named_parameters())
        for p in PARAMS:
            out[f"{g}/grad/{p}"] = params[p].grad.numpy().copy()
        out[f"{g}/loss"] = loss.detach().numpy().copy()
        opt.step()
        for p in PARAMS:
            out[f"{g}/after/{p}"] = params[p].detach().numpy().copy()
    return out


def fresh_batch(seed):
    """(init weights, input, labels) from torch.manual_seed(seed), in that order."""
    import torch

    from .reference_cnn import SimpleCNN

    torch.manual_seed(seed)
    net = SimpleCNN()
    init = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    x = torch.randn(BATCH, 3, 32, 32)
    y = torch.randint(0, 10, (BATCH,))
    return init, x.numpy(), y.numpy().astype("int64")


def differences(ours, theirs):
    """[(relative difference, dataset)], max |ours - theirs| / max(1, max |theirs|), largest first."""
    import numpy as np
    rows = []
    for k, want in theirs.items():
        want = np.asarray(want, dtype=np.float64)
        got = np.asarray(ours[k], dtype=np.float64)
        rows.append((float(np.max(np.abs(got - want))) / max(1.0, float(np.max(np.abs(want)))), k))
    return sorted(rows, reverse=True)


def main(argv=None):
    ap = argparse.ArgumentParser(prog=f"python3 -m cifar_tools.{PROG}", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("out", metavar="OUT.h5", help="the fixture to write (replaced if it exists)")
    ap.add_argument("--seed", type=int, default=SEED, help=f"torch.manual_seed of weights and batch (default {SEED})")
    ap.add_argument("--from", dest="source", metavar="OLD.h5",
                    help="take init/, input and labels from this fixture and compare the rest with it")
    args = ap.parse_args(argv)
    try:
        import h5py  # noqa: F401  (say what is missing before any work)
        import numpy as np
        import torch
    except ImportError as e:
        print(f"{PROG}: error: {e.name} is not installed for this python3 (Debian: apt-get install "
              "python3-torch python3-h5py python3-numpy; tools/install_deps.sh --tests)", file=sys.stderr)
        return 1
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        if args.source:
            old = read_arrays(args.source, ["input", "labels"] + [f"init/{p}" for p in PARAMS], "fixture")
            init = {p: old[f"init/{p}"].astype(np.float32) for p in PARAMS}
            x, y = old["input"].astype(np.float32), old["labels"].astype(np.int64)
        else:
            init, x, y = fresh_batch(args.seed)
        out = {"input": x, "labels": y, **{f"init/{p}": v for p, v in init.items()}, **two_steps(init, x, y)}
        write_arrays(args.out, out, {
            "hyper": f"SGD lr={LR} momentum={MOMENTUM} (v = mu*v + g; w -= lr*v), loss = mean cross-entropy",
            "made_with": f"PyTorch {torch.__version__}, float32, 1 thread",
            "made_by": f"python3 -m cifar_tools.{PROG}" + (f" --from {args.source}" if args.source else f" --seed {args.seed}"),
        })
        print(f"{PROG}: wrote {args.out} (PyTorch {torch.__version__}, labels {' '.join(map(str, y))}, "
              f"loss {out['step1/loss']:.7f} then {out['step2/loss']:.7f})")
        if args.source:
            theirs = read_arrays(args.source, [k for k in out if k.startswith("step")], "fixture")
            rows = differences(out, theirs)
            worst, name = rows[0]
            print(f"{PROG}: largest difference from {args.source}: {worst:.3g} ({name}; "
                  f"max |ours - theirs| / max(1, max |theirs|), over {len(rows)} datasets)")
            for group in ("step1/act", "step1/dact", "step1/grad", "step1/loss", "step1/after",
                          "step2/grad", "step2/loss", "step2/after"):
                print(f"  {group:12s} {max(d for d, k in rows if k.startswith(group)):.3g}")
            if worst > TOLERANCE:
                print(f"{PROG}: error: {name} differs from {args.source} by {worst:.3g} > {TOLERANCE}", file=sys.stderr)
                return 1
    except FileError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
