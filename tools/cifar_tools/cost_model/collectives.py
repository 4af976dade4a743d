"""Predicted times of the all-reduces at N ranks, message by message, for the scaling model
(cifar_tools.scaling_model, docs/scaling.md): ring, rhd, MPI_Allreduce as SimGrid's Open MPI selector
picks it, the hierarchical ring and hierarchical rhd, and auto (the least of them).

Every formula is a sum of point-to-point messages, each costing link.t(m) for m bytes: a plain
alpha + m beta (Link), or a table measured under SMPI at N=2 (CalibratedLink), which carries
SMPI's per-message-size latency and bandwidth factors without knowing them. Both directions of a
pairwise exchange run at once (full-duplex links), so an exchange of m bytes costs t(m).

    ring  2(N-1) t(S/N)
    rhd   2 sum_{k=1..log2 p} t(S/2^k)  + fold: 2 t(S) when N is not a power of two (p = 2^floor(log2 N))
    rdb   log2 p t(S) + fold                 (recursive doubling, whole buffer each step)
    redbcast  2 ceil(log2 N) t(S)            (binomial reduce then binomial broadcast, approximate)
    hierarchical (H hosts x L ranks, the L ranks of a host share its NIC):
          reduce-scatter within the host ((L-1) local t(S/L)), the cross-host algorithm on S/L bytes
          with L flows sharing each NIC, all-gather within the host ((L-1) local t(S/L))."""
import csv
import math

ALGORITHMS = ("ring", "rhd", "mpi", "hring", "hrhd")


class Link:
    """Plain alpha-beta: t(m) = alpha + m beta."""

    def __init__(self, alpha, beta, label=None):
        self.alpha, self.beta = alpha, beta
        self.label = label or f"alpha {alpha * 1e6:g} us, {8 / beta / 1e9:g} Gbit/s"

    def t(self, m):
        return self.alpha + m * self.beta

    def slope(self, m):
        return self.beta


class CalibratedLink:
    """t(m) interpolated (linearly in m) between messages measured under SMPI at N=2: there the
    ring and rhd are two exchanges of S/2 bytes, so t(S/2) = T(S) / 2. Above the largest measured
    message, the last segment's slope continues."""

    def __init__(self, path, algorithm="rhd"):
        pts = {}
        with open(path) as f:
            for r in csv.DictReader(f):
                if int(r["ranks"]) != 2:
                    continue
                s = int(r["size_bytes"])
                if s >= 8:  # a buffer of one float leaves one rank's half empty
                    pts[s / 2] = float(r[f"{algorithm}_time_us"]) * 1e-6 / 2
        if len(pts) < 2:
            raise ValueError(f"{path}: fewer than two N=2 rows to calibrate from")
        self.m = sorted(pts)
        self.tm = [pts[m] for m in self.m]
        self.label = f"SMPI at N=2 ({path})"

    def t(self, m):
        if m <= 0:
            return 0.0
        ms, ts = self.m, self.tm
        if m <= ms[0]:
            return ts[0]
        for i in range(1, len(ms)):
            if m <= ms[i]:
                w = (m - ms[i - 1]) / (ms[i] - ms[i - 1])
                return ts[i - 1] + w * (ts[i] - ts[i - 1])
        return ts[-1] + (m - ms[-1]) * self.slope(ms[-1])

    def slope(self, m):
        """bytes term (s per byte) around m: the secant to 2m."""
        return max(0.0, (self.t(2 * m) - self.t(m)) / m) if m < self.m[-1] else \
            (self.tm[-1] - self.tm[-2]) / (self.m[-1] - self.m[-2])


def pow2_floor(n):
    return 1 << (n.bit_length() - 1)


def ring(link, n, s):
    return 0.0 if n < 2 else 2 * (n - 1) * link.t(s / n)


def rhd(link, n, s):
    if n < 2:
        return 0.0
    p = pow2_floor(n)
    fold = 2 * link.t(s) if n > p else 0.0
    return fold + 2 * sum(link.t(s / 2 ** k) for k in range(1, p.bit_length()))


def rdb(link, n, s):
    if n < 2:
        return 0.0
    p = pow2_floor(n)
    return (2 * link.t(s) if n > p else 0.0) + (p.bit_length() - 1) * link.t(s)


def redbcast(link, n, s):
    return 0.0 if n < 2 else 2 * math.ceil(math.log2(n)) * link.t(s)


def ompi_allreduce_choice(n, s):
    """The algorithm SimGrid 3.32's ompi selector (allreduce__ompi, 'Updated 02/2022', a commutative
    op) runs for n ranks and s bytes: redbcast, rdb, lr (a ring), ring_segmented or rab_rdb."""
    table = [  # (ranks below, [(bytes below, algorithm)], otherwise)
        (4, [(8, "lr"), (4096, "rdb"), (8192, "lr"), (16384, "rdb"), (65536, "lr"), (262144, "ring_segmented")], "rab_rdb"),
        (8, [(16, "lr"), (8192, "rdb")], "rab_rdb"),
        (16, [(8192, "rdb")], "rab_rdb"),
        (32, [(64, "ring_segmented"), (4096, "rdb")], "rab_rdb"),
        (64, [(128, "ring_segmented")], "rab_rdb"),
        (128, [(262144, "rdb")], "rab_rdb"),
        (256, [(131072, "redbcast"), (262144, "rdb")], "rab_rdb"),
        (512, [(4096, "redbcast")], "rab_rdb"),
        (2048, [(2048, "redbcast"), (16384, "rdb")], "rab_rdb"),
    ]
    for below, cuts, other in table:
        if n < below:
            for b, algo in cuts:
                if s < b:
                    return algo
            return other
    return "rab_rdb"


def mpi(link, n, s):
    algo = ompi_allreduce_choice(n, s)
    if algo == "rab_rdb":
        return rhd(link, n, s)
    if algo == "rdb":
        return rdb(link, n, s)
    if algo == "redbcast":
        return redbcast(link, n, s)
    return ring(link, n, s)  # lr and ring_segmented: rings


class SharedNic:
    """L flows share each NIC: a message of m bytes costs t(m) plus (L-1) m of the others' bytes,
    those at the link's large-message rate (its per-message latency factors are not shared)."""

    def __init__(self, link, flows):
        self.link, self.flows = link, flows

    def t(self, m):
        return self.link.t(m) + (self.flows - 1) * m * self.link.slope(1 << 22)

    def slope(self, m):
        return self.flows * self.link.slope(m)


def rhd_two_level(link, local, n, per_host, s, near_first):
    """Flat rhd on hosts of per_host ranks (rank order fills a host first): step k of the halving
    moves S/2^k bytes between ranks 2^(k-1) apart (near_first: MPICH's and SimGrid's rab_rdb) or
    p/2^k apart (src/comm/rhd_allreduce.cpp: the largest half crosses hosts first); a step within
    a host runs on `local`, a step across hosts with per_host flows on each NIC. The doubling
    mirrors the halving. Powers of two only (the fold's pairs are within a host)."""
    p = pow2_floor(n)
    fold = 2 * local.t(s) if n > p else 0.0
    total = 0.0
    for k in range(1, p.bit_length()):
        distance = 2 ** (k - 1) if near_first else p // 2 ** k
        m = s / 2 ** k
        total += local.t(m) if distance < per_host else SharedNic(link, per_host).t(m)
    return fold + 2 * total


def hierarchical(cross, link, local, hosts, per_host, s):
    """Within the host (reduce-scatter, all-gather: rings over per_host ranks on `local`), across
    hosts `cross` (ring or rhd) over s / per_host bytes with per_host flows on each NIC."""
    if per_host < 2 or hosts < 2:
        return cross(link, hosts * per_host, s)
    within = 2 * (per_host - 1) * local.t(s / per_host)
    return within + cross(SharedNic(link, per_host), hosts, s / per_host)


class Collectives:
    """Predicted all-reduce times at n ranks (hosts x per_host on two-level platforms)."""

    def __init__(self, link, n, per_host=1, local=None):
        self.link, self.n, self.per_host = link, n, per_host
        self.hosts = n // per_host
        self.local = local or Link(0.5e-6, 8 / 400e9)

    def time(self, algorithm, s):
        if self.n < 2:
            return 0.0
        if algorithm == "ring":  # flat platforms only (a ring in rank order on hosts: hring's first hop)
            return ring(self.link, self.n, s)
        two_level = self.per_host > 1 and self.hosts > 1
        if algorithm == "rhd":
            return rhd_two_level(self.link, self.local, self.n, self.per_host, s, False) if two_level \
                else rhd(self.link, self.n, s)
        if algorithm == "mpi":
            if two_level and ompi_allreduce_choice(self.n, s) == "rab_rdb":
                return rhd_two_level(self.link, self.local, self.n, self.per_host, s, True)
            return mpi(self.link, self.n, s)
        if algorithm == "hring":
            return hierarchical(ring, self.link, self.local, self.hosts, self.per_host, s)
        if algorithm == "hrhd":
            return hierarchical(rhd, self.link, self.local, self.hosts, self.per_host, s)
        raise ValueError(f"unknown algorithm {algorithm}")

    def best(self, s, candidates=("ring", "rhd", "mpi")):
        """auto: (algorithm, time) of the least predicted time; MPI_Allreduce (which the trainer
        cannot poll) only when it is more than 1% faster than the best pollable one."""
        times = {a: self.time(a, s) for a in candidates}
        pollable = [a for a in candidates if a != "mpi"]
        a = min(pollable, key=times.get) if pollable else "mpi"
        if "mpi" in times and times["mpi"] < 0.99 * times[a]:
            a = "mpi"
        return a, times[a]
