"""PowerSGD's forecast (--compress powersgd): the ring all-reduce's share of a step with and without
compression, and the link rate below which compression pays. The same model as the program's
start-up forecast (src/app/compression_forecast.hpp), on the offline ring fits:
    plain:      t_ring(4 F)
    compressed: t_ring(4 (U + P)) + t_ring(4 Q) + W    two dependent all-reduces: latency twice
with t_ring(S) = 2(N-1) alpha + 2(N-1)/N S beta, F the model's floats, U the tensors left
uncompressed (vectors, and matrices the rank would not shrink 2x), P and Q the factors, W the local
work (matrix products and Gram-Schmidt; the program times it at start-up)."""

# SimpleCNN's tensors (src/model/simple_cnn.cpp), PyTorch shapes.
SHAPES = {
    "conv1.weight": (32, 3, 3, 3), "conv1.bias": (32,),
    "conv2.weight": (64, 32, 3, 3), "conv2.bias": (64,),
    "fc1.weight": (128, 2304), "fc1.bias": (128,),
    "fc2.weight": (10, 128), "fc2.bias": (10,),
}


def split_floats(shapes, rank, min_rate=2.0):
    """(uncompressed, P, Q) floats per step at `rank`, PyTorch's rule: a matrix (rows = dim 0) is
    compressed when (rows + cols) * r * min_rate < rows * cols, r = min(rows, cols, rank)."""
    u = p = q = 0
    for shape in shapes:
        rows = shape[0]
        count = 1
        for d in shape:
            count *= d
        cols = count // rows
        r = min(rows, cols, rank)
        if len(shape) >= 2 and (rows + cols) * r * min_rate < rows * cols:
            p += rows * r
            q += cols * r
        else:
            u += count
    return u, p, q


def ring(alpha, beta, n, nbytes):
    return 2 * (n - 1) * alpha + 2 * (n - 1) / n * nbytes * beta if n > 1 else 0.0


def forecast(alpha, beta, n, rank=4, wire_bytes=4, work_s=0.0, shapes=None):
    """dict: plain and compressed all-reduce seconds per step, and the break-even link rate (bit/s;
    compression pays below it). beta: s per byte on a link (8 / beta is the link's bit rate)."""
    shapes = list((shapes or SHAPES).values())
    total = sum(_count(s) for s in shapes)
    u, p, q = split_floats(shapes, rank)
    plain = ring(alpha, beta, n, total * wire_bytes)
    compressed = ring(alpha, beta, n, (u + p) * wire_bytes) + ring(alpha, beta, n, q * wire_bytes) + work_s
    # compressed == plain at beta*: 2(N-1)/N (total - u - p - q) wire_bytes beta* = 2(N-1) alpha + W
    saved = 2 * (n - 1) / n * (total - u - p - q) * wire_bytes
    beta_even = (2 * (n - 1) * alpha + work_s) / saved if saved > 0 else float("inf")
    return {"plain": plain, "compressed": compressed, "floats": total, "sent": u + p + q,
            "breakeven_bps": 8.0 / beta_even if beta_even > 0 else float("inf")}


def _count(shape):
    c = 1
    for d in shape:
        c *= d
    return c
