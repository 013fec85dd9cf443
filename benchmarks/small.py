#!/usr/bin/env python3
"""Small labs: `netlab up` and `netlab down` of one lab, whole processes, as CI jobs run them.

    sudo python3 benchmarks/small.py [FILE] [--repeat 7] [--json]

FILE defaults to the packaged default lab (2 nodes, 4 pods with ports, cluster DNS). Each
round runs `netlab up -q FILE`, then `netlab down -q --name LAB`, as subprocesses (the `netlab`
command on PATH, as a CI job runs it; else this interpreter's `-m netlab`), and times each
one's wall clock (start-up and imports included); then, in the same round, the baseline:
an iproute2 script that only adds and deletes the same number of network namespaces (`ip -batch`
with `netns add` / `netns del`: the least any tool pays for them). Prints medians, the ratios to
the baseline, one `up --timings` breakdown, and the targets of the performance issue (default lab:
up <= 250 ms, down <= 150 ms wall) as met / NOT met. Nothing is asserted: it measures.

The children run with Python's bytecode cache on, as an installed netlab runs (PYTHONDONTWRITEBYTECODE
is removed from their environment: with it, every run compiles every module again, ~+60 ms),
after one unmeasured round that fills the cache.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from netlab.ops import lab as lab_ops  # noqa: E402
from netlab.spec import loader  # noqa: E402

NETLAB = [shutil.which("netlab") or sys.executable] + ([] if shutil.which("netlab") else ["-m", "netlab"])
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
UP_TARGET_S, DOWN_TARGET_S = 0.250, 0.150


def timed(argv: list[str], stdin: str | None = None) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=ENV)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"`{' '.join(argv)}` failed ({proc.returncode}): {proc.stderr.strip()}")
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", help="lab file (default: the packaged default lab)")
    parser.add_argument("--repeat", type=int, default=7, help="rounds; the table shows medians")
    parser.add_argument("--json", action="store_true", help="results as JSON on stdout")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: it builds real namespaces")
    labfile = loader.load_file(args.file)
    name = labfile.lab.name
    if lab_ops.state.load(name) is not None:
        raise SystemExit(f"lab {name!r} is up: take it down first (netlab down --name {name})")
    count = len(lab_ops.make_plan(labfile).namespaces)
    up_argv = NETLAB + ["up", "-q"] + ([args.file] if args.file else [])
    down_argv = NETLAB + ["down", "-q", "--name", name]
    base = f"nlsmall{os.getpid() % 100000}"
    adds = "".join(f"netns add {base}-{i}\n" for i in range(count))
    dels = "".join(f"netns del {base}-{i}\n" for i in range(count))
    timed(up_argv)   # fills the bytecode cache; not measured
    timed(down_argv)
    load_before = os.getloadavg()
    ups, downs, base_ups, base_downs = [], [], [], []
    for _ in range(args.repeat):
        ups.append(timed(up_argv))
        downs.append(timed(down_argv))
        base_ups.append(timed(["ip", "-batch", "-"], adds))
        base_downs.append(timed(["ip", "-batch", "-"], dels))
    proc = subprocess.run(NETLAB + ["up", "-q", "--timings"] + ([args.file] if args.file else []),
                          capture_output=True, text=True, env=ENV)
    subprocess.run(down_argv, capture_output=True, env=ENV)
    med = {k: statistics.median(v) for k, v in
           (("up_s", ups), ("down_s", downs), ("baseline_up_s", base_ups), ("baseline_down_s", base_downs))}
    result = {"lab": name, "namespaces": count, "repeat": args.repeat, **{k: round(v, 4) for k, v in med.items()},
              "up_ratio": round(med["up_s"] / med["baseline_up_s"], 2),
              "down_ratio": round(med["down_s"] / med["baseline_down_s"], 2),
              "targets": {"up_s": UP_TARGET_S, "down_s": DOWN_TARGET_S,
                          "up_met": med["up_s"] <= UP_TARGET_S, "down_met": med["down_s"] <= DOWN_TARGET_S},
              "command": NETLAB, "load_before": [round(x, 2) for x in load_before],
              "load_after": [round(x, 2) for x in os.getloadavg()],
              "timings": [line.strip() for line in proc.stderr.splitlines() if line.strip()]}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"lab {name}: {count} namespaces, {args.repeat} rounds (medians; min-max); command: {' '.join(NETLAB)}")
    print(f"{'':<22} {'netlab':>8} {'ip -batch':>10} {'ratio':>7}")
    for what, mine, theirs in (("up", ups, base_ups), ("down", downs, base_downs)):
        print(f"{what + ' (whole process)':<22} {statistics.median(mine):>7.3f}s {statistics.median(theirs):>9.3f}s "
              f"{statistics.median(mine) / statistics.median(theirs):>6.1f}x   ({min(mine):.3f}-{max(mine):.3f} s)")
    for what, key, target in (("up", "up_s", UP_TARGET_S), ("down", "down_s", DOWN_TARGET_S)):
        verdict = "met" if med[key] <= target else "NOT met"
        print(f"target: {what} <= {target * 1000:.0f} ms -> {med[key] * 1000:.0f} ms: {verdict}")
    print(f"load average before/after: {' '.join(f'{x:.2f}' for x in load_before)} / "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print("one `netlab up --timings`:")
    print("\n".join("  " + line for line in result["timings"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
