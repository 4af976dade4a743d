"""Scores a cifar_mpi weights file with PyTorch: an independent check of the accuracy the program
reports (the network rebuilt in torch.nn from the file's PyTorch state_dict names and shapes).

    tools/score_weights.py WEIGHTS.h5 [--data-dir data/cifar-10-batches-bin]

Prints "test accuracy A% (N images)" for the official test batch, normalised as the program and
the PyTorch peer do ((x/255 - 0.5)/0.5). Needs torch, numpy and h5py (Debian: python3-torch).
Exit 2 with one line naming the file on bad input.
"""
import argparse
import os
import sys

import numpy as np

from .h5files import FileError, read_weights

PROG = "score_weights.py"
SHAPES = {"conv1.weight": (32, 3, 3, 3), "conv1.bias": (32,), "conv2.weight": (64, 32, 3, 3), "conv2.bias": (64,),
          "fc1.weight": (128, 2304), "fc1.bias": (128,), "fc2.weight": (10, 128), "fc2.bias": (10,)}


def die(msg):
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    sys.exit(2)


def load_state(path):
    try:
        return read_weights(path, SHAPES)
    except FileError as e:
        die(str(e))


def load_test(data_dir):
    path = os.path.join(data_dir, "test_batch.bin")
    if not os.path.isfile(path):
        die(f"{path}: file not found")
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 3073:
        die(f"{path}: size is not a multiple of 3073 bytes")
    rec = raw.reshape(-1, 3073)
    x = (rec[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0 - 0.5) / 0.5
    return x, rec[:, 0].astype(np.int64)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("weights")
    p.add_argument("--data-dir", default="data/cifar-10-batches-bin")
    a = p.parse_args()
    import torch

    from .reference_cnn import SimpleCNN

    net = SimpleCNN()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in load_state(a.weights).items()})
    net.eval()
    x, y = load_test(a.data_dir)
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), 1000):
            correct += int((net(torch.from_numpy(x[i:i + 1000])).argmax(1).numpy() == y[i:i + 1000]).sum())
    print(f"test accuracy {100 * correct / len(y):.2f}% ({len(y)} images)")


if __name__ == "__main__":
    main()
