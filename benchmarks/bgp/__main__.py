"""BGP convergence and failure, measured with real BIRD (backend bgp).

    sudo python3 -m benchmarks.bgp --nodes 4 10

For each size: a mesh lab with one pod per node; the time from the start of `netlab up` until every
session is Established and every node holds a `proto bird` route to every other block; then
`netlab node stop node-N` and the time until no other node has a route to node-N's block; then
`netlab node start node-N` and the time until every node has it again. Each lab is removed after.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from netlab.ops import state
from netlab.spec.labtext import lab_yaml, pod_yaml
from netlab.tools import bgp


def routes_to(lab: str, node: str, block: str) -> bool:
    out = subprocess.run(["ip", "-n", f"{lab}.{node}", "route", "show", block, "proto", "bird"],
                         capture_output=True, text=True).stdout
    return bool(out.strip())


def wait(check, bound: float = 120.0) -> float:
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > bound:
            raise SystemExit(f"gave up after {bound} s")
        time.sleep(0.02)
    return time.perf_counter() - start


def netlab(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "netlab", *args], check=True, stdout=subprocess.DEVNULL)


def measure(nodes: int, path: str) -> dict:
    lab = f"bgpbench{nodes}"
    pods = "".join(pod_yaml(f"p{i}", f"node-{i}") for i in range(1, nodes + 1))
    with open(path, "w") as f:
        f.write(lab_yaml(lab, backend="bgp", nodes=nodes, pods=pods))
    try:
        t0 = time.perf_counter()
        netlab("up", path)
        up_done = time.perf_counter() - t0
        converged = up_done + wait(lambda: bgp.converged(state.load(lab)))
        record = state.load(lab)
        last = record.nodes[-1]
        others = [n.name for n in record.nodes[:-1]]
        netlab("node", "stop", last.name, "--name", lab)
        withdrawn = wait(lambda: not any(routes_to(lab, o, last.pod_cidr) for o in others))
        netlab("node", "start", last.name, "--name", lab)
        restored = wait(lambda: all(routes_to(lab, o, last.pod_cidr) for o in others))
        return {"nodes": nodes, "up_s": round(up_done, 2), "converged_s": round(converged, 2),
                "withdrawn_after_stop_s": round(withdrawn, 2), "restored_after_start_s": round(restored, 2)}
    finally:
        subprocess.run([sys.executable, "-m", "netlab", "down", "--name", lab], stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[4, 10])
    parser.add_argument("--file", default="/tmp/netlab-bgp-bench.yaml")
    args = parser.parse_args()
    for n in args.nodes:
        print(json.dumps(measure(n, args.file)))


if __name__ == "__main__":
    main()
