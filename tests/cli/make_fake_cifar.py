"""Writes a small fake CIFAR-10 set (random pixels, labels 0-9) in the official binary layout:
DIR/data_batch_{1..5}.bin and DIR/test_batch.bin, N records each.
usage: python3 make_fake_cifar.py DIR N [SEED]"""
import os
import random
import sys

d, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 2)
os.makedirs(d, exist_ok=True)
for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    with open(os.path.join(d, name), "wb") as f:
        for _ in range(n):
            f.write(bytes([rng.randrange(10)]) + rng.randbytes(3072))
