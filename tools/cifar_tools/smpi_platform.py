"""SimGrid platforms for tools/smpi/smpi_allreduce.sh, and the hostfile that goes with one
(PYTHONPATH=tools /usr/bin/python3 -m cifar_tools.smpi_platform ...).

  smpi_platform.py flat --hosts N [--alpha-us 27] [--gbps 10] -o P.xml
      N hosts, one rank each, each on a private full-duplex link to a non-blocking backbone:
      host to host = two links, so each link gets half of alpha (alpha = the one-way latency of a
      message, beta = 1 / link rate).
  smpi_platform.py two-level --hosts H --cores L [--alpha-us 27] [--gbps 10]
                   [--local-gbps 400] [--local-alpha-us 0.5] -o P.xml
      H hosts of L cores: the L ranks of a host share its one link (its NIC) to the backbone, and
      talk to each other over the host's loopback (local rate and latency).
  smpi_platform.py hostfile P.xml [--np N]
      The hosts of P.xml, each repeated once per core, the first N lines (all without --np).

Site assumptions: SimGrid >= 3.29 (platform version 4.1), one <cluster> per file as written here.
"""
import argparse
import re
import sys
import xml.etree.ElementTree as ET

HEADER = '<?xml version="1.0"?>\n<!DOCTYPE platform SYSTEM "https://simgrid.org/simgrid.dtd">\n<platform version="4.1">\n'


def cluster(hosts, cores, alpha_us, gbps, local_gbps=None, local_alpha_us=None):
    attrs = {
        "id": "c", "prefix": "node-", "suffix": "", "radical": f"0-{hosts - 1}", "speed": "100Gf",
        "core": str(cores), "bw": f"{gbps:g}Gbps", "lat": f"{alpha_us / 2:g}us", "bb_bw": "100Tbps",
        "bb_lat": "0us", "sharing_policy": "SPLITDUPLEX",
    }
    if local_gbps is not None:
        attrs["loopback_bw"] = f"{local_gbps:g}Gbps"
        attrs["loopback_lat"] = f"{local_alpha_us:g}us"
    body = " ".join(f'{k}="{v}"' for k, v in attrs.items())
    return f"{HEADER}  <cluster {body}/>\n</platform>\n"


def expand_radical(radical):
    out = []
    for part in radical.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    return out


def hostfile(path, np):
    root = ET.parse(path).getroot()
    lines = []
    for c in root.iter("cluster"):
        cores = int(c.get("core", "1"))
        for i in expand_radical(c.get("radical")):
            lines.extend([f"{c.get('prefix', '')}{i}{c.get('suffix', '')}"] * cores)
    for h in root.iter("host"):
        lines.extend([h.get("id")] * int(h.get("core", "1")))
    if np is not None:
        if np > len(lines):
            sys.exit(f"smpi_platform.py: {path} has {len(lines)} cores, fewer than --np {np}")
        lines = lines[:np]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(prog="python3 -m cifar_tools.smpi_platform", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="kind", required=True)
    for kind in ("flat", "two-level"):
        p = sub.add_parser(kind)
        p.add_argument("--hosts", type=int, required=True)
        p.add_argument("--alpha-us", type=float, default=27.0, help="one-way host-to-host latency, us")
        p.add_argument("--gbps", type=float, default=10.0, help="link rate, Gbit/s")
        p.add_argument("-o", "--out", required=True)
        if kind == "two-level":
            p.add_argument("--cores", type=int, required=True, help="ranks per host, sharing its link")
            p.add_argument("--local-gbps", type=float, default=400.0, help="within a host, Gbit/s")
            p.add_argument("--local-alpha-us", type=float, default=0.5, help="within a host, us")
    p = sub.add_parser("hostfile")
    p.add_argument("platform")
    p.add_argument("--np", type=int)
    a = ap.parse_args()
    if a.kind == "hostfile":
        sys.stdout.write(hostfile(a.platform, a.np))
        return
    if a.hosts < 1 or a.alpha_us < 0 or a.gbps <= 0:
        sys.exit("smpi_platform.py: --hosts >= 1, --alpha-us >= 0, --gbps > 0")
    if a.kind == "flat":
        text = cluster(a.hosts, 1, a.alpha_us, a.gbps)
    else:
        text = cluster(a.hosts, a.cores, a.alpha_us, a.gbps, a.local_gbps, a.local_alpha_us)
    with open(a.out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
