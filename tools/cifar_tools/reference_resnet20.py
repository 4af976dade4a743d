"""ResNet-20 in torch.nn, He et al. 2016's CIFAR network ("Deep Residual Learning for Image
Recognition", section 4.2) with option-A shortcuts: the one definition the scripts that replay,
time or score cifar_mpi's ResNet-20 with PyTorch share (tests/cli/resnet20_vs_torch.py,
cifar_tools.torch_step_peer). Its state_dict names are the weights file's dataset names.

  conv1 3->16 3x3 pad 1 (no bias), bn1, ReLU
  layer1, layer2, layer3: 3 basic blocks each at 16, 32, 64 channels; the first block of layer2
      and of layer3 has stride 2 (32x32 -> 16x16 -> 8x8)
  basic block: conv1 3x3 stride s pad 1 (no bias), bn1, ReLU, conv2 3x3 pad 1 (no bias), bn2,
      + shortcut, ReLU; the shortcut is the identity, or where the shape changes x[:, :, ::2, ::2]
      zero-padded by planes//4 channels on each side (option A: no parameters)
  global average pool over 8x8, fc 64->10 (with bias)

0.27 M parameters (269,722) in 59 tensors: 19 convolution weights, 19 BatchNorms' weight and bias,
fc.weight and fc.bias; a weights file holds 97 datasets, the 59 and the BatchNorms' running mean
and variance. Forward: 40.55 M multiply-adds an image in the convolutions and fc (the often quoted
40.8 M adds some elementwise work, BatchNorm and pooling, as FLOP counting tools do).

  PYTHONPATH=tools /usr/bin/python3 -m cifar_tools.reference_resnet20 [--write-init OUT.h5 [--seed N]]

prints every weights file dataset (name, shape) and the counts above; --write-init writes the
initial weights of initial_weights(seed) (default seed 1) as a weights file.

Initialisation (initial_weights), as the standard CIFAR ResNet code (Yerlan Idelbayev's
pytorch_resnet_cifar10, whose option-A ResNet-20 reaches 91.25%): torch.manual_seed(seed), the
modules built in forward order (each with PyTorch's default initialisation), then
kaiming_normal_(weight) (fan_in, gain sqrt(2)) over every convolution and the fc layer in the same
order; fc.bias keeps nn.Linear's default U(-1/8, 1/8) (1/sqrt(64)); BatchNorm weight 1, bias 0,
running mean 0, running variance 1. BatchNorm is PyTorch's: eps 1e-5, momentum 0.1, biased batch
variance to normalise, unbiased for the running variance.

Needs torch (and h5py, numpy for --write-init)."""
import argparse
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

PROG = "reference_resnet20"
BLOCKS_PER_STAGE = 3
STAGE_PLANES = (16, 32, 64)
NUM_CLASSES = 10
BUFFER_SUFFIXES = ("running_mean", "running_var")  # state_dict entries that are not parameters
SKIPPED_SUFFIX = "num_batches_tracked"  # in the state_dict; weights files omit it (momentum is fixed)


class OptionAShortcut(nn.Module):
    """Where a block halves the resolution and doubles the channels: every second pixel of every
    second row, zero-padded by planes//4 channels before and after (no parameters)."""

    def __init__(self, planes):
        super().__init__()
        self.pad = planes // 4

    def forward(self, x):
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad), "constant", 0.0)


class BasicBlock(nn.Module):
    def __init__(self, in_planes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = OptionAShortcut(planes) if stride != 1 or in_planes != planes else nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    def __init__(self, num_classes=NUM_CLASSES):
        super().__init__()
        self.conv1 = nn.Conv2d(3, STAGE_PLANES[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(STAGE_PLANES[0])
        in_planes = STAGE_PLANES[0]
        for stage, planes in enumerate(STAGE_PLANES, start=1):
            blocks = []
            for b in range(BLOCKS_PER_STAGE):
                stride = 2 if stage > 1 and b == 0 else 1
                blocks.append(BasicBlock(in_planes, planes, stride))
                in_planes = planes
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        self.fc = nn.Linear(STAGE_PLANES[-1], num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1)  # 8x8 -> 1x1: the mean of each channel
        return self.fc(torch.flatten(out, 1))


def kaiming_init(net):
    """The standard CIFAR ResNet code's _weights_init: kaiming_normal_ on every conv and linear
    weight, in module order (BatchNorm and fc.bias keep PyTorch's defaults)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight)
    return net


def make_resnet20(seed=None):
    """A ResNet20 with the standard initialisation; torch.manual_seed(seed) first unless None."""
    if seed is not None:
        torch.manual_seed(seed)
    return kaiming_init(ResNet20())


def weight_names(net=None):
    """Every weights file dataset name in state_dict order (num_batches_tracked left out)."""
    net = net if net is not None else ResNet20()
    return [k for k in net.state_dict() if not k.endswith(SKIPPED_SUFFIX)]


def weight_shapes(net=None):
    """{dataset name: PyTorch shape} of a weights file, in state_dict order."""
    net = net if net is not None else ResNet20()
    return {k: tuple(v.shape) for k, v in net.state_dict().items() if not k.endswith(SKIPPED_SUFFIX)}


def state_arrays(net):
    """{dataset name: float32 numpy array} of the net's weights and running statistics."""
    return {k: v.detach().to(torch.float32).numpy().copy() for k, v in net.state_dict().items()
            if not k.endswith(SKIPPED_SUFFIX)}


def load_arrays(net, arrays):
    """Loads {dataset name: array} (a weights file's datasets) into net; num_batches_tracked kept."""
    state = {k: torch.from_numpy(arrays[k].astype("float32")) for k in weight_names(net)}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith(SKIPPED_SUFFIX)]
    if missing or unexpected:
        raise KeyError(f"state_dict mismatch: missing {missing}, unexpected {unexpected}")
    return net


def initial_weights(seed):
    """{dataset name: float32 array}: make_resnet20(seed)'s weights and running statistics."""
    return state_arrays(make_resnet20(seed))


def write_initial_weights(path, seed):
    """Writes initial_weights(seed) as a weights file (one float32 dataset per name, PyTorch shape)."""
    from .h5files import write_arrays
    write_arrays(path, initial_weights(seed))


def forward_macs_per_image(net, input_shape=(3, 32, 32)):
    """Multiply-adds of one image's forward pass through the net's convolutions and linear layers
    ({module name: MACs}, forward order), counted from the output shapes by forward hooks:
    out_elements x in_channels/groups x kh x kw per convolution, out x in per linear layer.
    BatchNorm, ReLU, the shortcut's add and the pooling are memory-bound and not counted."""
    macs, hooks = {}, []

    def hook(name):
        def count(m, inputs, out):
            if isinstance(m, nn.Conv2d):
                per = (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
                macs[name] = out[0].numel() * per
            else:
                macs[name] = out[0].numel() * m.in_features
        return count

    for name, m in net.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            hooks.append(m.register_forward_hook(hook(name)))
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            net(torch.zeros((1,) + tuple(input_shape)))
    finally:
        for h in hooks:
            h.remove()
        net.train(was_training)
    return macs


def main(argv=None):
    ap = argparse.ArgumentParser(prog=f"python3 -m cifar_tools.{PROG}", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("--write-init", metavar="OUT.h5", help="write the initial weights of --seed here")
    ap.add_argument("--seed", type=int, default=1, help="torch.manual_seed of the initial weights (default 1)")
    args = ap.parse_args(argv)
    net = make_resnet20(args.seed)
    shapes = weight_shapes(net)
    params = dict(net.named_parameters())
    for name, shape in shapes.items():
        kind = "parameter" if name in params else "buffer"
        print(f"{name:28s} {str(list(shape)):16s} {kind}")
    macs = forward_macs_per_image(net)
    print(f"{len(params)} parameter tensors ({sum(p.numel() for p in params.values())} values), "
          f"{len(shapes)} weights file datasets, {sum(macs.values()) / 1e6:.2f} M multiply-adds an image forward")
    if args.write_init:
        from .h5files import FileError
        try:
            write_initial_weights(args.write_init, args.seed)
        except FileError as e:
            print(f"{PROG}: error: {e}", file=sys.stderr)
            return 1
        print(f"{PROG}: wrote {args.write_init} (seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
