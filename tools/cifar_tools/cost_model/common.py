"""What every module shares: the one-line error convention (exit 2 with "cost_model.py: error:
..." naming the file), warnings, and link labels (a tc rate like 1gbit, or a name like loopback).
Kept apart so the fitting and modelling modules need no knowledge of the command line."""
import math
import re
import sys

from ..h5files import FileError

PROG = "cost_model.py"


class InputError(FileError):
    """Bad input; main() prints it as one line and exits 2 (a FileError of h5files too)."""


def die(msg):
    print(f"{PROG}: error: {msg}", file=sys.stderr)
    sys.exit(2)


def warn(msg):
    print(f"{PROG}: warning: {msg}", file=sys.stderr)


RATE_RE = re.compile(r"(\d+(?:\.\d+)?)([kmgt]?)bit(?:/s)?")


def parse_rate(label):
    """tc-style rate '<num>kbit|mbit|gbit|tbit' -> bit/s, or None for a label without a rate."""
    m = RATE_RE.fullmatch(label.strip().lower())
    if not m:
        return None
    return float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}[m.group(2)]


def link_key(label):
    """One key per link whatever its spelling: '1gbit' and '1000mbit' match."""
    r = parse_rate(label)
    return f"rate:{r:.6g}" if r else label.strip().lower()


def fmt_rate(bps):
    if bps is None or not math.isfinite(bps):
        return "-"
    for unit, v in (("Tbit/s", 1e12), ("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bps >= v:
            return f"{bps / v:.3g} {unit}"
    return f"{bps:.3g} bit/s"

