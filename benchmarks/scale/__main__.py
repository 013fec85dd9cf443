#!/usr/bin/env python3
"""Scale benchmark: netlab against the fastest iproute2 shell script (and Mininet when installed).

    python3 benchmarks/scale [--nodes 10] [--pods-per-node 100] [--backend vxlan|host-gw|...] [--json] [--repeat N]
                             [--ports 1] [--no-iproute2] [--no-inprocess]

Builds K nodes x M pods (the lab file's compact form, spec.scale) three ways in one run:
  netlab     `netlab up -q` / `netlab down` as subprocesses: what a user waits for; peak RSS
             is the child's ru_maxrss (os.wait4);
  in-process lab.up()/lab.down() in this process (no interpreter start-up);
  iproute2   a shell script generated from netlab's own plan that makes the same kernel
             objects the fastest way a script can: every `netns add` in one `ip -batch`, then
             one `ip -n NS -batch` per namespace, veth pairs made from the bridge side straight
             into the pod (`link add vethX master cni0 up type veth peer name eth0 netns POD`),
             `bridge -n NODE -batch` for fdb entries and hairpin, sysctls with `ip netns exec`;
             down is one `ip -batch` of `netns del` lines, for its own namespaces only;
  ports      (with --ports N) `netlab up -q` of the same lab with N ports per pod, served by the
             lab's responder; the targets (up within 1.3x of the netlab run without ports, PSS of
             all the lab's processes within 150 MB, /proc/PID/smaps_rollup) are printed;
  mininet    `mn --topo single,N --switch lxbr --controller none --test none` with N = pods,
             only with --mininet and Debian's mininet installed: its switch and host links
             live in the root namespace, which netlab itself never touches, so it is opt-in.
Between runs it waits until the kernel has freed the namespaces of the previous one (its
`netns` workqueue has gone idle), so no run pays for another's teardown; that wait is
reported as `reclaim_s`. Afterwards it compares a sample of namespaces of both builds (links,
addresses, routes, neighbours, fdb, hairpin, sysctls) and checks nothing is left behind.

--nodes and --pods-per-node take lists (1,5,10 or 10,50,100): every combination is run, to
show the per-pod cost at several sizes in one run. More nodes at the same pods per node is
the clean test of flatness: more pods per node also means more ports on each node's bridge,
which makes each new port dearer in the kernel itself, for netlab and iproute2 alike.

This file runs the sizes and the command line; measure.py times a run (and waits for the
kernel), approaches.py builds and removes a lab each way, iproute2.py writes the script,
equivalence.py compares the two builds, report.py summarizes and prints the table.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from netlab.ops import lab as lab_ops  # noqa: E402
from netlab.spec import loader  # noqa: E402
from netlab.kernel import netns  # noqa: E402
from netlab.core.backends import Backend  # noqa: E402
from benchmarks.scale.approaches import (  # noqa: E402
    Iproute2, NetlabCli, NetlabInProcess, lab_text, mininet_installed, mininet_run)
from benchmarks.scale.equivalence import compare  # noqa: E402
from benchmarks.scale.measure import Run, lab_namespaces, log, settle  # noqa: E402
from benchmarks.scale.report import summarize, table  # noqa: E402


# -- the benchmark ----------------------------------------------------------------------------
def size_run(args, base: str, nodes: int, per_node: int, workdir: Path) -> dict:
    pods = nodes * per_node
    names = {"netlab": f"{base}n", "in-process": f"{base}p", "iproute2": f"{base}i", "ports": f"{base}r"}
    paths = {}
    for approach, name in names.items():
        paths[approach] = workdir / f"{name}.yaml"
        paths[approach].write_text(lab_text(name, nodes, per_node, args.backend,
                                            tuple(range(80, 80 + args.ports)) if approach == "ports" else ()))
    plans = {a: lab_ops.make_plan(loader.load_file(str(paths[a]))) for a in ("netlab", "iproute2")}
    builders = {"netlab": NetlabCli(paths["netlab"], names["netlab"]),
                "in-process": NetlabInProcess(paths["in-process"], names["in-process"]),
                "iproute2": Iproute2(plans["iproute2"], workdir / "script"),
                "ports": NetlabCli(paths["ports"], names["ports"])}
    order = [a for a in ("netlab", "ports", "in-process", "iproute2") if a in args.approaches]
    compared = "netlab" in order and "iproute2" in order
    runs: dict[str, list[Run]] = defaultdict(list)
    comparison: dict = {}
    for rep in range(args.repeat):
        keep = compared and rep == args.repeat - 1   # the last builds stay up until compared
        for approach in order:
            log(f"[{nodes}x{per_node}] {approach} (run {rep + 1}/{args.repeat})")
            run = Run(approach, nodes, pods)
            runs[approach].append(run)
            builders[approach].up(run)
            if not (keep and approach in ("netlab", "iproute2")):
                builders[approach].down(run)
                run.reclaim_s = round(settle(), 3)
            if run.error:
                log(f"  error: {run.error}")
        if keep:
            comparison = compare(plans["netlab"], plans["iproute2"], names)
            for approach in ("netlab", "iproute2"):
                builders[approach].down(runs[approach][-1])
            runs["netlab"][-1].reclaim_s = round(settle(), 3)
    if "mininet" in args.approaches:
        for rep in range(args.repeat):
            log(f"[{nodes}x{per_node}] mininet, {pods} hosts (run {rep + 1}/{args.repeat})")
            runs["mininet"].append(mininet_run(pods, nodes))
            settle()
    return {"nodes": nodes, "pods_per_node": per_node, "pods": pods, "ports": args.ports,
            "namespaces": len(plans["netlab"].namespaces),
            "runs": {a: [asdict(r) for r in rs] for a, rs in runs.items()},
            "summary": {a: summarize(rs) for a, rs in runs.items()},
            "equivalence": comparison}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", default="10", help="nodes; a list (1,5,10) runs each")
    parser.add_argument("--pods-per-node", default="100", help="pods per node; a list (10,50,100) runs each")
    # wireguard's devices need keys and, without kernel WireGuard, a daemon per node: no iproute2 twin
    parser.add_argument("--backend", default="vxlan", choices=[b.value for b in Backend if b is not Backend.WIREGUARD])
    parser.add_argument("--repeat", type=int, default=1, help="runs per approach; the table shows medians")
    parser.add_argument("--json", action="store_true", help="results as JSON on stdout")
    parser.add_argument("--mininet", action="store_true",
                        help="also run mn (Debian's mininet; changes the root namespace while it runs)")
    parser.add_argument("--no-inprocess", action="store_true", help="skip the in-process netlab run")
    parser.add_argument("--ports", type=int, default=0,
                        help="also build the lab with this many ports per pod (80, 81, ...: the lab's responder "
                             "serves them) with `netlab up`, and print the responder's targets against the "
                             "netlab run without ports")
    parser.add_argument("--no-iproute2", action="store_true", help="skip the iproute2 script (and the comparison)")
    parser.add_argument("--name-prefix", default=f"sb{os.getpid() % 100000}",
                        help="lab names are this + n (netlab), p (in-process), i (iproute2)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("benchmarks/scale builds namespaces: run it as root", file=sys.stderr)
        return 2
    try:
        sizes = [(int(n), int(m)) for n in str(args.nodes).split(",") if n
                 for m in str(args.pods_per_node).split(",") if m]
    except ValueError:
        parser.error("--nodes and --pods-per-node take numbers, or lists like 10,50,100")
    args.approaches = ["netlab"] + ([] if args.no_iproute2 else ["iproute2"]) + \
        ([] if args.no_inprocess else ["in-process"]) + (["ports"] if args.ports else [])
    if args.mininet and mininet_installed():
        args.approaches.append("mininet")
    base = args.name_prefix
    if len(base) > 23:
        parser.error("--name-prefix: at most 23 characters (lab names are at most 24)")
    results = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="netlab-scale-") as tmp:
        try:
            for nodes, per_node in sizes:
                results.append(size_run(args, base, nodes, per_node, Path(tmp)))
        finally:
            cleanup(base, Path(tmp))
    left = [n for n in netns.listed() if n.startswith(base)]
    report = {"backend": args.backend, "repeat": args.repeat, "cpus": os.cpu_count(),
              "kernel": os.uname().release, "loadavg": {"before": load_before, "after": os.getloadavg()},
              "results": results, "left_behind": left}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(table(results))
        print(f"load average before/after: {' '.join(f'{x:.2f}' for x in load_before)} / "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
        if left:
            print(f"left behind: {left}")
    return 1 if left else 0


def cleanup(base: str, workdir: Path) -> None:
    """After an error: netlab's labs through netlab, the script's namespaces by its own list."""
    for suffix in ("n", "p", "r"):
        if lab_namespaces(f"{base}{suffix}"):
            lab_ops.down(f"{base}{suffix}")
    batch = workdir / "script" / "batches" / "netns-del"
    if batch.exists():
        names = [line.split()[-1] for line in batch.read_text().splitlines()]
        existing = [n for n in names if os.path.exists(netns.path(n))]
        if existing:
            subprocess.run(["ip", "-batch", "-"], input="".join(f"netns del {n}\n" for n in existing),
                           text=True, check=False)


if __name__ == "__main__":
    sys.exit(main())
