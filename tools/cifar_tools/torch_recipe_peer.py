"""PyTorch trained with cifar_mpi's recipe, one process: the peer that tells a difference in the
training from one in the schedule when an accuracy looks low. The same model definition (the
reference ResNet-20 or SimpleCNN), the same data (the official binary files, normalised as the
program does: x/255 to [-1, 1]), the same augmentation (random 32x32 crop of the image padded by
4 zero bytes, then a horizontal flip with probability 1/2), SGD as torch.optim.SGD (momentum,
weight decay on every parameter, no Nesterov), the learning rate set before every step from the
cosine schedule over the whole run (lr * (1 + cos(pi t / T)) / 2, as the program's `cosine`
without warm-up) or kept constant, batches of --batch in a fresh random order every epoch (the
last one shorter), test accuracy at the end of every epoch with BatchNorm's running statistics.

  PYTHONPATH=tools /usr/bin/python3 -m cifar_tools.torch_recipe_peer --data DIR
      [--model resnet20|simplecnn] [--epochs 10] [--batch 128] [--lr 0.1] [--momentum 0.9]
      [--weight-decay 5e-4] [--lr-schedule cosine|constant] [--augment crop-flip|none]
      [--init-weights FILE.h5] [--save-weights OUT.h5] [--no-shuffle] [--threads 1] [--seed 1]

--init-weights starts from a weights file (cifar_mpi's `--init-weights` takes the same file), so
the two runs differ only in the random draws of data order and augmentation; with --no-shuffle
(the records in file order every epoch) and `--augment none` they differ in nothing but rounding
(tests/cli/torch_recipe_peer.sh holds them to that). --save-weights writes the final weights and
running statistics as a weights file. Prints one JSON line
an epoch (epoch, mean training loss, test accuracy, seconds since the start) and a last line with
the final and best accuracy.

Needs torch, numpy (and h5py for --init-weights)."""
import argparse
import json
import math
import os
import sys
import time

PROG = "torch_recipe_peer"
PAD = 4


def read_records(folder, names):
    import numpy as np
    parts = []
    for name in names:
        path = os.path.join(folder, name)
        try:
            parts.append(np.fromfile(path, dtype=np.uint8).reshape(-1, 3073))
        except (OSError, ValueError) as e:
            raise SystemExit(f"{PROG}: error: CIFAR-10 file {path}: {str(e).splitlines()[0]}")
    rec = np.concatenate(parts)
    return rec[:, 1:].reshape(-1, 3, 32, 32), rec[:, 0].astype(np.int64)


def normalise(images_u8):
    import numpy as np
    return (images_u8.astype(np.float32) / 255.0 - 0.5) / 0.5


def augmented_batch(padded, index, rng):
    """Crops and flips the padded uint8 images at index: offsets 0..8 on each axis, flip 1/2."""
    import numpy as np
    out = np.empty((len(index), 3, 32, 32), dtype=np.uint8)
    tops = rng.integers(0, 2 * PAD + 1, len(index))
    lefts = rng.integers(0, 2 * PAD + 1, len(index))
    flips = rng.integers(0, 2, len(index))
    for k, i in enumerate(index):
        crop = padded[i, :, tops[k]:tops[k] + 32, lefts[k]:lefts[k] + 32]
        out[k] = crop[:, :, ::-1] if flips[k] else crop
    return out


def make_model(name, torch):
    if name == "resnet20":
        from .reference_resnet20 import make_resnet20
        return make_resnet20(1)
    from .reference_cnn import SimpleCNN
    torch.manual_seed(1)
    return SimpleCNN()


def load_init(net, path, torch):
    from .h5files import FileError, read_weights
    state = net.state_dict()
    shapes = {k: tuple(v.shape) for k, v in state.items() if not k.endswith("num_batches_tracked")}
    try:
        arrays = read_weights(path, shapes)
    except FileError as e:
        raise SystemExit(f"{PROG}: error: {e}")
    state.update({k: torch.from_numpy(a) for k, a in arrays.items()})
    net.load_state_dict(state)


def accuracy(net, x, y, torch):
    net.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), 1000):
            correct += (net(x[i:i + 1000]).argmax(1) == y[i:i + 1000]).sum().item()
    net.train()
    return correct / len(x)


def main(argv=None):
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="folder of the CIFAR-10 binary files")
    p.add_argument("--model", choices=["resnet20", "simplecnn"], default="resnet20")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--lr-schedule", choices=["cosine", "constant"], default="cosine")
    p.add_argument("--augment", choices=["crop-flip", "none"], default="crop-flip")
    p.add_argument("--init-weights", default="")
    p.add_argument("--save-weights", default="")
    p.add_argument("--no-shuffle", action="store_true", help="the records in file order every epoch")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if args.epochs < 1 or args.batch < 1 or args.threads < 1:
        p.error("--epochs, --batch and --threads must be positive")

    import numpy as np
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    train_u8, train_y = read_records(args.data, [f"data_batch_{i}.bin" for i in range(1, 6)])
    test_u8, test_y = read_records(args.data, ["test_batch.bin"])
    padded = np.pad(train_u8, ((0, 0), (0, 0), (PAD, PAD), (PAD, PAD)))  # zero bytes: -1 once normalised
    test_x, test_y = torch.from_numpy(normalise(test_u8)), torch.from_numpy(test_y)
    train_x_plain = normalise(train_u8) if args.augment == "none" else None

    net = make_model(args.model, torch)
    if args.init_weights:
        load_init(net, args.init_weights, torch)
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    n = len(train_y)
    steps_per_epoch = math.ceil(n / args.batch)
    total = steps_per_epoch * args.epochs
    start, step, best = time.time(), 0, 0.0
    for epoch in range(1, args.epochs + 1):
        order = np.arange(n) if args.no_shuffle else rng.permutation(n)
        loss_sum = 0.0
        for b in range(steps_per_epoch):
            index = order[b * args.batch:(b + 1) * args.batch]
            xb = normalise(augmented_batch(padded, index, rng)) if train_x_plain is None else train_x_plain[index]
            x, y = torch.from_numpy(xb), torch.from_numpy(train_y[index])
            lr = args.lr if args.lr_schedule == "constant" else args.lr * (1 + math.cos(math.pi * step / total)) / 2
            for g in opt.param_groups:
                g["lr"] = lr
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            loss_sum += loss.item()
            step += 1
        acc = accuracy(net, test_x, test_y, torch)
        best = max(best, acc)
        print(json.dumps({"epoch": epoch, "train_loss": round(loss_sum / steps_per_epoch, 4),
                          "test_accuracy": round(acc, 4), "seconds": round(time.time() - start, 1)}), flush=True)
    if args.save_weights:
        from .h5files import write_arrays
        write_arrays(args.save_weights, {k: v.detach().numpy().copy() for k, v in net.state_dict().items()
                                         if not k.endswith("num_batches_tracked")})
    print(json.dumps({"final_accuracy": round(acc, 4), "best_accuracy": round(best, 4), "epochs": args.epochs,
                      "model": args.model, "weight_decay": args.weight_decay, "lr": args.lr}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
