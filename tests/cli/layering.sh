#!/usr/bin/env bash
# The folders are the architecture and dependencies point down only:
#   app -> {metrics, comm, optim, model, data} -> util;  comm -> model (the parameter arena).
# Fails on an #include "cifar_mpi/<folder>/..." that points up or sideways, on a source whose
# header lives in another folder than the source (util/x.hpp with src/metrics/x.cpp), and on a
# cifar_layer() line of CMakeLists.txt that links a library the map below does not allow.
set -euo pipefail
ROOT="${2:-$(cd "$(dirname "$0")/../.." && pwd)}"
cd "$ROOT"
/usr/bin/python3 - <<'PY'
import pathlib, re, sys
allowed = {
    "util": set(),
    "data": {"util"},
    "model": {"util"},
    "optim": {"util"},
    "comm": {"util", "model"},
    "metrics": {"util"},
    "app": {"util", "data", "model", "optim", "comm", "metrics"},
}
bad = []
files = [p for d in ("include/cifar_mpi", "src") for p in pathlib.Path(d).rglob("*") if p.suffix in (".hpp", ".cpp")]
for p in files:
    parts = p.parts[2:] if p.parts[0] == "include" else p.parts[1:]
    if len(parts) < 2:
        continue  # src/main.cpp sits above every folder
    layer = parts[0]
    if layer not in allowed:
        bad.append(f"{p}: folder '{layer}' is not a known layer")
        continue
    for n, line in enumerate(p.read_text().splitlines(), 1):
        m = re.match(r'\s*#\s*include\s+"cifar_mpi/([a-z_]+)/', line)
        if m and m.group(1) != layer and m.group(1) not in allowed[layer]:
            bad.append(f"{p}:{n}: {layer} includes {m.group(1)} ({line.strip()})")
headers = {}
for h in pathlib.Path("include/cifar_mpi").rglob("*.hpp"):
    headers.setdefault(h.stem, []).append(h.relative_to("include/cifar_mpi").parts[0])
for s in pathlib.Path("src").rglob("*.cpp"):
    if len(s.parts) > 2 and s.stem in headers and s.parts[1] not in headers[s.stem]:
        bad.append(f"{s}: its header is in include/cifar_mpi/{headers[s.stem][0]}/, not {s.parts[1]}/")
# The libraries CMakeLists.txt links must state the same graph.
cmake = pathlib.Path("CMakeLists.txt").read_text()
declared = {}
for m in re.finditer(r'^cifar_layer\((\w+)([^)]*)\)', cmake, re.M):
    declared[m.group(1)] = set(re.findall(r'\bcifar_(\w+)', m.group(2)))
if set(declared) != set(allowed):
    bad.append(f"CMakeLists.txt: cifar_layer() declares {sorted(declared)}, the map has {sorted(allowed)}")
for layer, deps in declared.items():
    for d in sorted(deps - allowed.get(layer, set())):
        bad.append(f"CMakeLists.txt: cifar_{layer} links cifar_{d}, which the layering does not allow")
for b in bad:
    print("layering:", b)
print(f"layering: {len(files)} files checked, {len(bad)} problem(s)")
sys.exit(1 if bad else 0)
PY
