"""Scores a cifar_mpi weights file with PyTorch: an independent check of the accuracy the program
reports (the network rebuilt in torch.nn from the file's PyTorch state_dict names and shapes).

    tools/score_weights.py WEIGHTS.h5 [--model auto|simplecnn|resnet20] [--data-dir data/cifar-10-batches-bin]

Either model of cifar_mpi --model: by default the file's datasets say which (ResNet-20's have
layer1.0.conv1.weight, the reference CNN's fc1.weight); --model names it instead, and a file of the
other model is then refused. ResNet-20 is scored in inference mode, its BatchNorm layers
normalising with the running mean and variance the file holds, as the program evaluates.
Prints "test accuracy A% (N images)" for the official test batch, normalised as the program and
the PyTorch peer do ((x/255 - 0.5)/0.5). Needs torch, numpy and h5py (Debian: python3-torch).
Exit 2 with one line naming the file on bad input.
"""
import argparse
import os
import sys

import numpy as np

from .h5files import FileError, open_file, read_weights

PROG = "score_weights.py"
SHAPES = {"conv1.weight": (32, 3, 3, 3), "conv1.bias": (32,), "conv2.weight": (64, 32, 3, 3), "conv2.bias": (64,),
          "fc1.weight": (128, 2304), "fc1.bias": (128,), "fc2.weight": (10, 128), "fc2.bias": (10,)}
# A dataset only that model's weights files have: how a file says which network it holds.
MARKERS = {"resnet20": "layer1.0.conv1.weight", "simplecnn": "fc1.weight"}


def die(msg):
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    sys.exit(2)


def file_model(path):
    """The model whose weights the file holds ("simplecnn" or "resnet20"), from its dataset names."""
    try:
        with open_file(path, "weights file") as f:
            found = [m for m, name in MARKERS.items() if name in f]
    except FileError as e:
        die(str(e))
    if len(found) != 1:
        die(f"weights file {path}: neither a simplecnn nor a resnet20 weights file (no dataset "
            f"'{MARKERS['simplecnn']}' or '{MARKERS['resnet20']}')")
    return found[0]


def load_net(path, model):
    """The torch.nn network of model with the file's weights (and running statistics), in eval mode."""
    try:
        import torch
    except ImportError:
        die("needs PyTorch (torch) in this python3 (Debian: apt-get install python3-torch)")
    try:
        if model == "resnet20":
            from . import reference_resnet20 as r20
            net = r20.ResNet20()
            r20.load_arrays(net, read_weights(path, r20.weight_shapes(net)))
        else:
            from .reference_cnn import SimpleCNN
            net = SimpleCNN()
            net.load_state_dict({k: torch.from_numpy(v) for k, v in read_weights(path, SHAPES).items()})
    except FileError as e:
        die(str(e))
    # BatchNorm must use the file's running statistics, not the test batch's own.
    return net.eval()


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
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("weights", help="a weights file of cifar_mpi --save-weights")
    p.add_argument("--model", choices=("auto", "simplecnn", "resnet20"), default="auto",
                   help="the network the file holds (default auto: from its datasets)")
    p.add_argument("--data-dir", default="data/cifar-10-batches-bin")
    a = p.parse_args()
    model = file_model(a.weights)
    if a.model not in ("auto", model):
        die(f"weights file {a.weights}: holds {model} weights, not --model {a.model}")
    net = load_net(a.weights, model)
    x, y = load_test(a.data_dir)
    import torch

    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), 1000):
            correct += int((net(torch.from_numpy(x[i:i + 1000])).argmax(1).numpy() == y[i:i + 1000]).sum())
    print(f"test accuracy {100 * correct / len(y):.2f}% ({len(y)} images)")


if __name__ == "__main__":
    main()
