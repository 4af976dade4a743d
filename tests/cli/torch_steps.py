"""PyTorch's side of a fidelity check: K SGD steps of the reference network from given weights,
over the first K batches of a CIFAR-10 folder in file order (what `cifar_mpi --no-shuffle` trains
on one rank), then the largest difference from a weights file cifar_mpi saved.

  python3 torch_steps.py init DIR SEED OUT.h5
      writes PyTorch's default initialisation (torch.manual_seed(SEED)) as a weights file
  python3 torch_steps.py compare DIR INIT.h5 OURS.h5 STEPS BATCH [LR MOMENTUM]
      replays STEPS steps in PyTorch (float32, 1 thread) and prints
      "max |ours - torch| / max(1, |torch|) = E (TENSOR)"; exit 1 when E > 1e-4

Normalisation (x/255 - 0.5)/0.5 and SGD with momentum (v = m v + g; w -= lr v) as the program.
Needs torch, numpy and h5py.
"""
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
from cifar_tools.reference_cnn import SimpleCNN  # noqa: E402  (the one definition)

NAMES = ["conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc1.weight", "fc1.bias",
         "fc2.weight", "fc2.bias"]
TOLERANCE = 1e-4




def train_records(data_dir, n):
    """The first n training records, data_batch_1.bin onwards: normalised images and labels."""
    recs = []
    for i in range(1, 6):
        recs.append(np.fromfile(f"{data_dir}/data_batch_{i}.bin", dtype=np.uint8).reshape(-1, 3073))
        if sum(len(r) for r in recs) >= n:
            break
    rec = np.concatenate(recs)[:n]
    x = (rec[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / 255.0 - 0.5) / 0.5
    return torch.from_numpy(x), torch.from_numpy(rec[:, 0].astype(np.int64))


def read(path):
    with h5py.File(path, "r") as f:
        return {k: np.asarray(f[k][()], dtype=np.float32) for k in NAMES}


def main():
    torch.set_num_threads(1)
    mode = sys.argv[1]
    if mode == "init":
        torch.manual_seed(int(sys.argv[3]))
        net = SimpleCNN()
        with h5py.File(sys.argv[4], "w") as f:
            for k, v in net.state_dict().items():
                f[k] = v.numpy()
        return 0
    data_dir, init, ours, steps, batch = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
    lr = float(sys.argv[7]) if len(sys.argv) > 7 else 0.01
    momentum = float(sys.argv[8]) if len(sys.argv) > 8 else 0.9
    net = SimpleCNN()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in read(init).items()})
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    x, y = train_records(data_dir, steps * batch)
    for s in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x[s * batch:(s + 1) * batch]), y[s * batch:(s + 1) * batch])
        loss.backward()
        opt.step()
    got = read(ours)
    want = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    worst, where = 0.0, ""
    for k in NAMES:
        e = float(np.max(np.abs(got[k] - want[k]) / np.maximum(1.0, np.abs(want[k]))))
        if e > worst:
            worst, where = e, k
    moved = max(float(np.max(np.abs(want[k] - v))) for k, v in read(init).items())
    print(f"max |ours - torch| / max(1, |torch|) = {worst:.3g} ({where}); weights moved up to {moved:.3g}")
    return 0 if worst <= TOLERANCE and moved > 10 * TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
