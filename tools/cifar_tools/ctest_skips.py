"""What a ctest run skipped, from its JUnit report, and whether each skip was allowed: the last
lines of tools/run_tests.sh.

    ctest --output-junit REPORT.xml --test-output-size-passed 1000000 ...
    PYTHONPATH=tools /usr/bin/python3 -m cifar_tools.ctest_skips REPORT.xml [--allowed FILE]

Two kinds of skip are counted: tests ctest did not run (a GoogleTest GTEST_SKIP, a tests/cli script
that exited 77: a missing package, no root, ...) and cases that a passing tests/cli script skipped
(its output lines "SKIP: ..."). It prints "skipped tests: N" and "skipped cases in passing
tests: M", each followed by one line per skip with its reason, and last the plain count
"tests: P passed, F failed, S skipped" (the ctest run's, from the same report).

--allowed FILE (.ci/run gives .ci/allowed_skips) lists the skips that may happen, one a line: a
Python regular expression, " -- ", and why. It is matched against the whole of "TEST: REASON"
(e.g. "ComputeDtypeBf16.FiveStepsTrackFp32: this CPU has neither avx512_bf16 nor AMX").
Then any other skip fails the run: exit 1, naming it. Exit 2 when the report or FILE is unreadable."""
import argparse
import re
import sys
import xml.etree.ElementTree as ET

PROG = "ctest_skips"
SKIP_LINE = re.compile(r"^SKIP\b.*")


def skip_reason(output, fallback):
    """Why a test did not run: GoogleTest's message (the line after '...: Skipped'), or a script's
    'SKIP: ...' line; else ctest's own note."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.rstrip().endswith(": Skipped") and i + 1 < len(lines) and lines[i + 1].strip():
            return lines[i + 1].strip()
        if SKIP_LINE.match(line.strip()):
            return line.strip()
    return fallback


def read_report(path):
    """([(test, reason)] not run, [(test, 'SKIP ...')] cases skipped inside passing tests)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        raise ValueError(f"{path}: not a readable JUnit report ({e})") from None
    not_run, cases = [], []
    counts = {"passed": 0, "failed": 0}
    for tc in root.iter("testcase"):
        name, status = tc.get("name", "?"), tc.get("status", "")
        out_el = tc.find("system-out")
        output = (out_el.text or "") if out_el is not None else ""
        if status in ("notrun", "disabled") or tc.find("skipped") is not None:
            skipped = tc.find("skipped")
            note = skipped.get("message", status) if skipped is not None else status
            not_run.append((name, skip_reason(output, note)))
        elif status == "run":
            counts["passed"] += 1
            cases += [(name, line.strip()) for line in output.splitlines() if SKIP_LINE.match(line.strip())]
        else:
            counts["failed"] += 1
    return not_run, cases, counts


def read_allowed(path):
    """[(compiled regex, why)] of FILE; '#' starts a comment line."""
    allowed = []
    try:
        lines = open(path).read().splitlines()
    except OSError as e:
        raise ValueError(f"{path}: cannot read the allowed skips ({e.strerror})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pattern, sep, why = line.partition(" -- ")
        if not sep or not why.strip():
            raise ValueError(f"{path}:{n}: want 'REGEX -- why it may skip', got '{line}'")
        try:
            allowed.append((re.compile(pattern.strip()), why.strip()))
        except re.error as e:
            raise ValueError(f"{path}:{n}: bad regular expression '{pattern.strip()}' ({e})") from None
    return allowed


def main(argv=None):
    ap = argparse.ArgumentParser(prog=f"python3 -m cifar_tools.{PROG}", description=__doc__.split("\n\n")[0])
    ap.add_argument("report", metavar="REPORT.xml", help="ctest --output-junit REPORT.xml")
    ap.add_argument("--allowed", metavar="FILE", help="the skips that may happen (REGEX -- why); any other fails")
    a = ap.parse_args(argv)
    try:
        not_run, cases, counts = read_report(a.report)
        allowed = read_allowed(a.allowed) if a.allowed else None
    except ValueError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    refused = []

    def show(kind, skips):
        print(f"{kind}: {len(skips)}")
        for test, reason in skips:
            line = f"{test}: {reason}"
            why = next((w for rx, w in allowed if rx.fullmatch(line)), None) if allowed is not None else None
            if allowed is not None and why is None:
                refused.append(line)
            print(f"  {line}" + (f"  [allowed: {why}]" if why else "  [NOT ALLOWED]" if allowed is not None else ""))

    show("skipped tests", not_run)
    show("skipped cases in passing tests", cases)
    print(f"tests: {counts['passed']} passed, {counts['failed']} failed, {len(not_run)} skipped")
    if refused:
        print(f"{PROG}: error: {len(refused)} skip(s) not allowed by {a.allowed}: they should run here "
              f"(install what they need: tools/install_deps.sh --tests), or be listed there with a reason",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
