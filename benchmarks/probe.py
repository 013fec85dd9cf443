#!/usr/bin/env python3
"""Probe benchmark: the full matrix of a 100-pod lab on one port, half of it denied.

    sudo python3 benchmarks/probe.py [--nodes 10] [--pods-per-node 10] [--repeat 5] [--one-by-one] [--json]

Builds NODES x PODS_PER_NODE pods (the compact form, a responder container on port 80 in each pod, served by the lab's responder)
with two NetworkPolicies that let the pods of the first half of the nodes talk only among
themselves (labtext.split_policies: 5,000 of the 9,900 pairs of 10 x 10 denied, on egress
and on ingress). Then runs `netlab probe --port 80 --json` (default 1 s timeout) REPEAT
times as a subprocess — the first right after `up`, with cold neighbour caches — and
reports for each run the whole command's wall time, its CPU time (user + system, from
getrusage of the children), the load average just before it, and whether the matrix equals the policy
oracle's (core/policy/evaluate.py) pair by pair. With --one-by-one it also probes the pairs
one at a time (one attempt open at once, in-process) and compares. Prints the target next
to the median: target 5 of the performance issue, ≤ 3 s and identical.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from netlab.core import ipam  # noqa: E402
from netlab.core.policy.evaluate import truth_table  # noqa: E402
from netlab.model.lab import Protocol  # noqa: E402
from netlab.ops import lab as lab_ops, state  # noqa: E402
from netlab.spec import loader  # noqa: E402
from netlab.spec.labtext import scale_lab_yaml, split_policies  # noqa: E402
from netlab.tools import probe as prober  # noqa: E402

TARGET_SECONDS = 3.0
NETLAB = [sys.executable, "-m", "netlab"]


def timed_probe(name: str) -> tuple[float, float, dict, str]:
    """`netlab probe` as a user runs it: wall and CPU seconds, the JSON, the summary line."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(NETLAB + ["probe", "--name", name, "--port", "80", "--json"],
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"netlab probe failed: {proc.stderr}")
    return wall, cpu, json.loads(proc.stdout), proc.stderr.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--pods-per-node", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--one-by-one", action="store_true", help="also probe one pair at a time and compare")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark builds a lab")
    name = f"probebench{os.getpid() % 10000}"
    half = [f"node-{n}" for n in range(1, args.nodes // 2 + 1)]
    text = scale_lab_yaml(name, args.nodes, args.pods_per_node, ports=(80,), documents=split_policies(half))
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lab.yaml"
        path.write_text(text)
        labfile = loader.load_file(str(path))
        expected = truth_table(labfile, ipam.allocate(labfile).pod_ips, 80, Protocol.TCP)
        # the CLI, not this process, measures: so the CPU time of the CLI is all probe's
        subprocess.run(NETLAB + ["up", "-q", str(path)], check=True, stdout=subprocess.DEVNULL)
        try:
            for i in range(args.repeat):
                load = os.getloadavg()[0]
                wall, cpu, data, summary = timed_probe(name)
                seen = {(r["from"], r["to"]): r["allowed"] for r in data["results"]}
                wrong = sum(seen.get(pair) != want for pair, want in expected.items())
                runs.append({"run": i + 1, "cold": i == 0, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                             "load": round(load, 2), "pairs": len(seen), "wrong": wrong, "summary": summary})
            single = None
            if args.one_by_one:
                record = state.load(name)
                old = prober.IN_FLIGHT
                prober.IN_FLIGHT = 1
                try:
                    started = time.perf_counter()
                    results = prober.probe(prober.pods_of(record), [prober.Check(80, Protocol.TCP)], 1.0)
                    took = time.perf_counter() - started
                finally:
                    prober.IN_FLIGHT = old
                one = {(r.src, r.dst): r.allowed for r in results}
                single = {"seconds": round(took, 1), "differs_from_oracle": sum(one[p] != w for p, w in expected.items()),
                          "differs_from_last_run": sum(one[p] != seen[p] for p in expected)}
        finally:
            lab_ops.down(name)
    median = statistics.median(r["wall_s"] for r in runs)
    exact = all(r["wrong"] == 0 and r["pairs"] == len(expected) for r in runs)
    report = {"nodes": args.nodes, "pods": args.nodes * args.pods_per_node, "pairs": len(expected),
              "denied_by_oracle": sum(not v for v in expected.values()), "runs": runs, "median_wall_s": median,
              "median_cpu_s": statistics.median(r["cpu_s"] for r in runs), "one_by_one": single,
              "target_s": TARGET_SECONDS, "fast_met": median <= TARGET_SECONDS, "exact": exact}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"lab {args.nodes} x {args.pods_per_node} = {report['pods']} pods, {len(expected)} pairs, "
          f"{report['denied_by_oracle']} denied by the policies (oracle); netlab probe --port 80 (timeout 1 s)")
    print(f"{'run':>3} {'cold':>5} {'wall s':>7} {'cpu s':>6} {'load':>5} {'wrong':>5}  summary")
    for r in runs:
        print(f"{r['run']:>3} {str(r['cold']):>5} {r['wall_s']:>7.2f} {r['cpu_s']:>6.2f} {r['load']:>5.2f} "
              f"{r['wrong']:>5}  {r['summary'].splitlines()[0]}")
    if single:
        print(f"one by one: {single['seconds']} s, {single['differs_from_oracle']} pairs differ from the oracle, "
              f"{single['differs_from_last_run']} from the last run")
    print(f"target: identical to the oracle / one by one -> {'met' if exact else 'NOT met'}")
    print(f"target: median wall <= {TARGET_SECONDS:.1f} s -> {median:.2f} s "
          f"(cpu {report['median_cpu_s']:.2f} s): {'met' if report['fast_met'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
