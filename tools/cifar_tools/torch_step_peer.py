"""PyTorch's training step, timed: the peer of cifar_mpi's train_step_bench for the speed comparison
of either model (one process, no communication). A step is what a PyTorch training loop does per
batch: zero_grad, forward, mean cross-entropy, backward, SGD with momentum (lr 0.01, momentum 0.9);
the batches are already in memory (random normal images, or the first training records of a
CIFAR-10 folder normalised as the program does), so nothing but the step is timed.

  PYTHONPATH=tools /usr/bin/python3 -m cifar_tools.torch_step_peer --model resnet20|simplecnn
      [--threads 2] [--batch 128] [--steps 20] [--warmup 3] [--dtype fp32|bf16] [--data DIR]
      [--channels-last]

Prints one JSON line (median and min ms a step, the median CPU time a step per thread, GFLOP a
step, GFLOP/s at the median and at the best step, images/s, oneDNN's sgemm GFLOP/s inside PyTorch
at the same threads, the CPU, the load average) and one readable line. On a machine shared with
other work the min and the CPU time say more than the median. Models: tools/cifar_tools/reference_resnet20.py (its standard initialisation,
seed 1) and reference_cnn.py (PyTorch's default initialisation, seed 1).

FLOPs are counted as train_step_bench counts them: 2 x the multiply-adds of the convolutions and
fully connected layers, three passes each (forward, backward data, backward weights) but the first
layer, which needs no data gradient. ResNet-20: 40.55 M multiply-adds an image forward, 242.4 MFLOP
an image a training step, 31.0 GFLOP a step of 128; SimpleCNN: 23.6 MFLOP an image. BatchNorm,
ReLU, pooling, the residual adds and the update are not counted (memory-bound).

PyTorch's convolutions run on oneDNN; its nn.Linear and torch.mm on the BLAS it was built with,
which for Debian's python3-torch is the generic one (libblas.so.3: the reference BLAS unless an
optimised one is installed, ~3 GFLOP/s here): that costs SimpleCNN's fc layers time, and ResNet-20's
64 x 10 fc nothing. The peer times PyTorch as installed; the sgemm rate it reports is oneDNN's.

--dtype bf16 runs forward and backward under torch.autocast("cpu", torch.bfloat16) (convolutions
and linear layers in bf16, BatchNorm and the update in fp32), as a PyTorch user would; it is only
fast where the CPU has avx512_bf16 (or AMX), and the JSON says whether this one does.
--channels-last stores images and weights NHWC (torch.channels_last), often faster for oneDNN.

Needs torch (numpy for --data)."""
import argparse
import json
import os
import platform
import statistics
import sys
import time

PROG = "torch_step_peer"
LR, MOMENTUM = 0.01, 0.9


def cpu_name_and_flags():
    """(model name, set of flags) from /proc/cpuinfo, or (platform's name, empty set)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and name in ("", platform.machine(), platform.processor()):
                    name = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return name, flags


def build(model, torch):
    """The model, seeded: ResNet-20's standard initialisation or SimpleCNN's default one."""
    if model == "resnet20":
        from .reference_resnet20 import make_resnet20
        return make_resnet20(seed=1)
    from .reference_cnn import SimpleCNN
    torch.manual_seed(1)
    return SimpleCNN()


def train_flops_per_image(net):
    """2 x multiply-adds of a training step for one image, as train_step_bench counts them."""
    from .reference_resnet20 import forward_macs_per_image
    macs = forward_macs_per_image(net)
    first = next(iter(macs.values()))
    return 2.0 * (3 * sum(macs.values()) - first), sum(macs.values())


def batches(args, torch, count):
    """count (images, labels) batches in memory: random normal, or the folder's first records."""
    if args.data:
        import numpy as np
        need = count * args.batch
        recs, have = [], 0
        for i in range(1, 6):
            path = os.path.join(args.data, f"data_batch_{i}.bin")
            try:
                recs.append(np.fromfile(path, dtype=np.uint8).reshape(-1, 3073))
            except (OSError, ValueError) as e:
                raise SystemExit(f"{PROG}: error: CIFAR-10 file {path}: {str(e).splitlines()[0]}")
            have += len(recs[-1])
            if have >= need:
                break
        rec = np.concatenate(recs)
        if len(rec) < need:
            count = max(1, len(rec) // args.batch)
            need = count * args.batch
            if len(rec) < need:
                raise SystemExit(f"{PROG}: error: CIFAR-10 folder {args.data}: {len(rec)} records, "
                                 f"fewer than one batch of {args.batch}")
        rec = rec[:need]
        x = (rec[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0 - 0.5) / 0.5
        x, y = torch.from_numpy(x), torch.from_numpy(rec[:, 0].astype(np.int64))
    else:
        g = torch.Generator().manual_seed(2)
        x = torch.randn(count * args.batch, 3, 32, 32, generator=g)
        y = torch.randint(0, 10, (count * args.batch,), generator=g)
    out = []
    for i in range(count):
        xb = x[i * args.batch:(i + 1) * args.batch].contiguous()
        if args.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        out.append((xb, y[i * args.batch:(i + 1) * args.batch].contiguous()))
    return out


def sgemm_gflops(torch, n=1024, reps=2, trials=10):
    """The fp32 n x n x n matrix multiply rate of oneDNN inside PyTorch (an inner product on
    mkldnn tensors: the library PyTorch's convolutions run on and train_step_bench's dnnl_sgemm)
    at the current threads; torch.mm where PyTorch has no oneDNN. The best of `trials` short
    trials, so a machine shared with other work still shows what the cores can do."""
    if torch.backends.mkldnn.is_available():
        from torch.utils import mkldnn as mkldnn_utils
        layer = mkldnn_utils.to_mkldnn(torch.nn.Linear(n, n, bias=False))
        a = torch.randn(n, n).to_mkldnn()

        def multiply():
            layer(a)
    else:
        a, b = torch.randn(n, n), torch.randn(n, n)

        def multiply():
            torch.mm(a, b)
    with torch.no_grad():
        multiply()
        best = float("inf")
        for _ in range(trials):
            t0 = time.perf_counter()
            for _ in range(reps):
                multiply()
            best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 * reps / best / 1e9


def main(argv=None):
    ap = argparse.ArgumentParser(prog=f"python3 -m cifar_tools.{PROG}", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("--model", choices=("resnet20", "simplecnn"), default="resnet20", help="default resnet20")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--batch", type=int, default=128, help="images a step (default 128)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    ap.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32", help="default fp32")
    ap.add_argument("--data", metavar="DIR", help="a CIFAR-10 binary folder (default: random images)")
    ap.add_argument("--channels-last", action="store_true", help="NHWC images and weights")
    args = ap.parse_args(argv)
    for name in ("threads", "batch", "steps"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.warmup < 0:
        ap.error(f"--warmup must be at least 0, got {args.warmup}")
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print(f"{PROG}: error: torch is not installed for this python3 (Debian: apt-get install python3-torch; "
              "tools/install_deps.sh --bench)", file=sys.stderr)
        return 1
    torch.set_num_threads(args.threads)
    net = build(args.model, torch).train()
    flops_per_image, macs_per_image = train_flops_per_image(net)
    if args.channels_last:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    data = batches(args, torch, min(args.steps + args.warmup, 8))
    bf16 = args.dtype == "bf16"

    def step(x, y):
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss

    times, cpu_times = [], []
    for i in range(args.warmup + args.steps):
        x, y = data[i % len(data)]
        c0, t0 = time.process_time(), time.perf_counter()
        loss = step(x, y)
        t, c = time.perf_counter() - t0, time.process_time() - c0
        if i >= args.warmup:
            times.append(t)
            cpu_times.append(c / args.threads)
    if not torch.isfinite(loss):
        print(f"{PROG}: error: the loss is {float(loss)} after {args.warmup + args.steps} steps", file=sys.stderr)
        return 1
    median, best = statistics.median(times), min(times)
    gflop = flops_per_image * args.batch / 1e9
    cpu, flags = cpu_name_and_flags()
    sgemm = sgemm_gflops(torch)
    result = {
        "peer": f"PyTorch {torch.__version__}", "model": args.model, "dtype": args.dtype,
        "channels_last": args.channels_last, "threads": args.threads, "batch": args.batch,
        "steps": args.steps, "warmup": args.warmup, "data": args.data or "random",
        "ms_median": round(1e3 * median, 3), "ms_min": round(1e3 * best, 3),
        "cpu_ms_per_thread_median": round(1e3 * statistics.median(cpu_times), 3),
        "forward_macs_per_image": macs_per_image, "gflop_per_step": round(gflop, 4),
        "gflops_median": round(gflop / median, 2), "gflops_best": round(gflop / best, 2),
        "images_per_second": round(args.batch / median, 1), "onednn_sgemm_gflops": round(sgemm, 1),
        "model_over_sgemm": round(gflop / median / sgemm, 3), "final_loss": round(float(loss), 4),
        "cpu": cpu, "avx512_bf16": "avx512_bf16" in flags, "load_average_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))
    print(f"{PROG}: {args.model} {args.dtype}{' channels-last' if args.channels_last else ''}, "
          f"{args.threads} threads, batch {args.batch}: {1e3 * median:.1f} ms a step (median of {args.steps}, "
          f"min {1e3 * best:.1f}), {gflop:.2f} GFLOP a step, {gflop / median:.1f} GFLOP/s "
          f"({gflop / median / sgemm:.2f} of oneDNN's sgemm {sgemm:.1f}), {args.batch / median:.0f} images/s, "
          f"cpu {1e3 * statistics.median(cpu_times):.1f} ms a step per thread; "
          f"{cpu}, load average {os.getloadavg()[0]:.2f}")
    if bf16 and "avx512_bf16" not in flags:
        print(f"{PROG}: note: this CPU has no avx512_bf16: bf16 is emulated and slower than fp32 here",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
