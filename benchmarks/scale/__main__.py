#!/usr/bin/env python3
"""Scale benchmark: netlab against the fastest iproute2 shell script (and Mininet when installed).

    python3 benchmarks/scale [--nodes 10] [--pods-per-node 100] [--backend vxlan|host-gw|...] [--json] [--repeat N]

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
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from netlab.ops import lab as lab_ops  # noqa: E402
from netlab.spec import loader  # noqa: E402
from netlab.spec.labtext import lab_yaml  # noqa: E402
from netlab.kernel import netns  # noqa: E402
from netlab.kernel.inventory import Mark  # noqa: E402
from netlab.model.lab import Backend  # noqa: E402
from netlab.core.plan import Plan, Role  # noqa: E402
from netlab.core.steps import Bridge, Ipip, Ipvlan, Macvlan, Sysctl, Veth  # noqa: E402

NETLAB = [sys.executable, "-m", "netlab"]
VETH_NAME = re.compile(r"^veth[0-9a-f]{8}$")
SETTLE_TIMEOUT = 60.0


@dataclass
class Run:
    approach: str
    nodes: int
    pods: int
    up_s: float | None = None
    down_s: float | None = None
    up_cpu_s: float | None = None     # user + system time of `up` (its children included): what load cannot inflate
    reclaim_s: float | None = None
    peak_rss_mb: float | None = None
    namespaces: int | None = None
    stages: dict[str, float] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Child:
    seconds: float
    cpu_seconds: float
    returncode: int
    maxrss_kb: int
    stdout: str
    stderr: str


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- the lab -----------------------------------------------------------------------------
def lab_text(name: str, nodes: int, per_node: int, backend: str) -> str:
    return lab_yaml(name, backend, pod_subnet="172.16.0.0/12", service_subnet="10.96.0.0/12", scale=(nodes, per_node))


def run_child(argv: list[str], env: dict | None = None) -> Child:
    """Run argv to completion; wall time and the child's own peak RSS (wait4's rusage).

    netlab runs from this tree (PYTHONPATH), the one the benchmark's plan came from.
    """
    if env is None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Child(seconds, usage.ru_utime + usage.ru_stime, proc.returncode, usage.ru_maxrss, out.read(),
                     err.read())


# -- waiting for the kernel ---------------------------------------------------------------
def netns_cleanup_running() -> bool:
    """A kernel worker is running the `netns` workqueue (freeing dropped namespaces)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().rstrip().endswith("+netns"):
                    return True
        except OSError:
            continue
    return False


def settle() -> float:
    """Wait until the kernel has freed the namespaces the last run dropped; the seconds it took.

    The kernel frees them after the last reference goes, on its `netns` workqueue; its
    worker shows as kworker/...+netns while at it. Done when none has shown for 0.3 s.
    """
    start = time.perf_counter()
    idle_since = None
    while time.perf_counter() - start < SETTLE_TIMEOUT:
        now = time.perf_counter()
        if netns_cleanup_running():
            idle_since = None
        elif idle_since is None:
            idle_since = now
        elif now - idle_since >= 0.3:
            break
        time.sleep(0.02)
    return time.perf_counter() - start


# -- netlab ---------------------------------------------------------------------------------
def parse_timings(stderr: str) -> dict[str, float]:
    stages = {}
    for line in stderr.splitlines():
        m = re.match(r"^\s+(\S.*?)\s+([0-9.]+) ms$", line)
        if m:
            stages[m.group(1)] = round(float(m.group(2)) / 1000, 4)
    return stages


def lab_namespaces(lab: str) -> list[str]:
    return [n for n in netns.listed() if n.startswith(f"{lab}.")]


class NetlabCli:
    """`netlab up -q` and `netlab down` as a user runs them: interpreter start-up included."""

    approach = "netlab"

    def __init__(self, path: Path, name: str):
        self.path, self.name = path, name

    def up(self, run: Run) -> None:
        up = run_child(NETLAB + ["up", "-q", "--timings", str(self.path)])
        run.up_s, run.up_cpu_s, run.peak_rss_mb = up.seconds, up.cpu_seconds, up.maxrss_kb / 1024
        run.stages = parse_timings(up.stderr)
        if up.returncode != 0:
            run.error = f"netlab up exited {up.returncode}: {up.stderr.strip()[-500:]}"
        run.namespaces = len(lab_namespaces(self.name))

    def down(self, run: Run) -> None:
        down = run_child(NETLAB + ["down", "-q", "--timings", "--name", self.name])
        run.down_s = down.seconds
        run.peak_rss_mb = max(run.peak_rss_mb or 0, down.maxrss_kb / 1024)
        run.stages.update({f"down: {k}": v for k, v in parse_timings(down.stderr).items()})
        if down.returncode != 0:
            run.error = (run.error or "") + f" netlab down exited {down.returncode}: {down.stderr.strip()[-500:]}"


class NetlabInProcess:
    """lab.up()/lab.down() called in this process: netlab's own time, no start-up."""

    approach = "in-process"

    def __init__(self, path: Path, name: str):
        self.path, self.name = path, name

    def up(self, run: Run) -> None:
        labfile = loader.load_file(str(self.path))
        start, cpu = time.perf_counter(), time.process_time()
        try:
            result = lab_ops.up(labfile)
            run.up_s, run.up_cpu_s = time.perf_counter() - start, time.process_time() - cpu
            run.stages = {stage: round(sec, 4) for stage, sec in result.timings.stages}
        except Exception as err:   # reported in the table; the lab is still taken down
            run.error = f"lab.up: {err}"
        run.namespaces = len(lab_namespaces(self.name))

    def down(self, run: Run) -> None:
        start = time.perf_counter()
        lab_ops.down(self.name)
        run.down_s = time.perf_counter() - start


# -- iproute2 ---------------------------------------------------------------------------
@dataclass
class Script:
    up: Path
    down: Path
    namespaces: list[str]


def iproute2_script(the_plan: Plan, workdir: Path) -> Script:
    """Shell scripts making the plan's kernel objects with iproute2 batches, and removing them."""
    lab = the_plan.lab.lab.name
    ip: dict[str, list[str]] = defaultdict(list)
    br: dict[str, list[str]] = defaultdict(list)
    sysctl: dict[str, list[str]] = defaultdict(list)
    pre: dict[str, list[str]] = defaultdict(list)
    lenient: set[str] = set()   # namespaces with an optional key: `sysctl -e` skips what the kernel lacks
    order = [ns.name for ns in the_plan.namespaces]
    position = {name: i for i, name in enumerate(order)}
    for ns in the_plan.namespaces:
        mark = Mark(lab, ns.role.value, ns.subject).text()
        ip[ns.name].append(f'link set dev lo alias "{mark}"')   # the same ownership mark netlab sets
        for step in ns.steps:
            if isinstance(step, Veth):
                # made from the peer's side, whose batch runs first: master and up in the same request
                if position[step.peer_netns] > position[ns.name]:
                    raise ValueError(f"{ns.name}: veth peer namespace {step.peer_netns} comes later in the plan")
                master = f" master {step.peer_master}" if step.peer_master else ""
                ip[step.peer_netns].append(
                    f"link add name {step.peer} mtu {step.mtu}{master} up type veth "
                    f"peer name {step.name} mtu {step.mtu} netns {ns.name}")
                if step.hairpin:
                    br[step.peer_netns].append(f"link set dev {step.peer} hairpin on")
            elif isinstance(step, Bridge):
                # describe() puts mtu after `type bridge`, where ip reads it as a bridge option
                ip[ns.name].append(f"link add name {step.name} mtu {step.mtu} type bridge")
            elif isinstance(step, Sysctl):
                sysctl[ns.name].append(f"{step.key.replace('/', '.')}={step.value}")
                if step.optional:
                    lenient.add(ns.name)
            elif isinstance(step, Ipip):
                # tunl0 may already be there (the ipip module's fallback): a shell `||`, not a batch line
                pre[ns.name].append(f"ip -n {ns.name} {step.describe().replace(' || ip ', f' || ip -n {ns.name} ')[3:]}")
            elif isinstance(step, (Macvlan, Ipvlan)) and step.parent_netns:
                # made in the parent's namespace (its batch runs first) and moved here by the same request
                ip[step.parent_netns].append(step.describe().removeprefix(f"ip -n {step.parent_netns} "))
            else:
                # every other step's description is one `ip` or `bridge` command: a batch line as it is
                text = step.describe()
                if text.startswith("ip "):
                    ip[ns.name].append(text.removeprefix("ip "))
                elif text.startswith("bridge "):
                    br[ns.name].append(text.removeprefix("bridge "))
                elif not text.startswith("#"):
                    raise TypeError(f"the benchmark has no iproute2 line for {step!r}")
    batches = workdir / "batches"
    batches.mkdir(parents=True, exist_ok=True)
    (batches / "netns-add").write_text("".join(f"netns add {n}\n" for n in order))
    (batches / "netns-del").write_text("".join(f"netns del {n}\n" for n in reversed(order)))
    lines = ["#!/bin/sh", "set -e", f"d={batches}", "ip -batch $d/netns-add"]
    for i, name in enumerate(order):
        lines += pre[name]
        (batches / f"{i}.ip").write_text("\n".join(ip[name]) + "\n")
        lines.append(f"ip -n {name} -batch $d/{i}.ip")
        if br[name]:
            (batches / f"{i}.br").write_text("\n".join(br[name]) + "\n")
            lines.append(f"bridge -n {name} -batch $d/{i}.br")
        if sysctl[name]:
            flags = "-q -e -w" if name in lenient else "-q -w"
            lines.append(f"ip netns exec {name} sysctl {flags} {' '.join(sysctl[name])}")
    up, down = workdir / "up.sh", workdir / "down.sh"
    up.write_text("\n".join(lines) + "\n")
    down.write_text(f"#!/bin/sh\nip -batch {batches}/netns-del\n")
    return Script(up, down, order)


class Iproute2:
    """The generated script: up.sh builds, down.sh removes exactly the namespaces it made."""

    approach = "iproute2"

    def __init__(self, the_plan: Plan, workdir: Path):
        self.plan, self.workdir = the_plan, workdir
        self.script: Script | None = None

    def up(self, run: Run) -> None:
        self.script = script = iproute2_script(self.plan, self.workdir)
        taken = [n for n in script.namespaces if os.path.exists(netns.path(n))]
        if taken:   # never build over (or later delete) namespaces this run did not make
            self.script = None
            (self.workdir / "script" / "batches" / "netns-del").unlink(missing_ok=True)   # cleanup() reads it
            run.error = f"namespaces already exist, not this benchmark's: {taken[:3]}"
            return
        up = run_child(["sh", str(script.up)])
        run.up_s, run.up_cpu_s = up.seconds, up.cpu_seconds
        if up.returncode != 0:
            run.error = f"script exited {up.returncode}: {up.stderr.strip()[-500:]}"
        run.namespaces = len(lab_namespaces(self.plan.lab.lab.name))

    def down(self, run: Run) -> None:
        if self.script is None:
            return
        existing = [n for n in self.script.namespaces if os.path.exists(netns.path(n))]
        if len(existing) == len(self.script.namespaces):
            run.down_s = run_child(["sh", str(self.script.down)]).seconds
        elif existing:   # a failed build: remove what it made, by the list, untimed
            subprocess.run(["ip", "-batch", "-"], input="".join(f"netns del {n}\n" for n in reversed(existing)),
                           text=True, check=False)
        self.script = None


# -- mininet ------------------------------------------------------------------------------
def mininet_installed() -> bool:
    if not shutil.which("mn"):
        return False
    out = subprocess.run(["apt-cache", "policy", "mininet"], capture_output=True, text=True).stdout
    return "Installed:" in out and "Installed: (none)" not in out


def mininet_run(hosts: int, nodes: int) -> Run:
    """mn builds and tears down in one command; its '*** Stopping' line splits up from down."""
    run = Run("mininet", nodes, hosts)
    argv = ["mn", "--topo", f"single,{hosts}", "--switch", "lxbr", "--controller", "none", "--test", "none"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    start = time.perf_counter()
    stopping = None
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        if stopping is None and line.startswith("*** Stopping"):
            stopping = time.perf_counter()
        tail = (tail + [line])[-5:]
    proc.wait()
    end = time.perf_counter()
    if proc.returncode != 0 or stopping is None:
        run.error = f"mn exited {proc.returncode}: {''.join(tail).strip()[-300:]}"
        return run
    run.up_s, run.down_s = stopping - start, end - stopping
    run.namespaces = hosts
    return run


# -- equivalence --------------------------------------------------------------------------
def _ipj(ns: str, *args: str, tool: str = "ip") -> list:
    out = subprocess.run([tool, "-n", ns, "-j", "-d", *args], capture_output=True, text=True).stdout
    try:
        return json.loads(out or "[]")
    except json.JSONDecodeError:
        return []


def _norm(ifname: str | None) -> str:
    return "veth*" if ifname and VETH_NAME.match(ifname) else str(ifname)


def shape(ns: str, lab: str) -> dict:
    """What one namespace holds, with names that embed the lab (veth hashes, MACs) left out."""
    links = _ipj(ns, "link", "show")
    addrs = _ipj(ns, "-4", "address", "show")
    routes = _ipj(ns, "-4", "route", "show", "table", "all")
    neigh = _ipj(ns, "neigh", "show", "nud", "permanent")
    fdb = [f for f in _ipj(ns, "fdb", "show", tool="bridge") if "dst" in f]
    ports = _ipj(ns, "link", "show", tool="bridge")
    alias = next((l.get("ifalias", "") for l in links if l.get("ifname") == "lo"), "")
    sysctls = {}
    if not ns.count(".") > 1:   # vpc and nodes carry sysctls; pods none
        for key in ("net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables"):
            out = subprocess.run(["ip", "netns", "exec", ns, "cat", f"/proc/sys/{key}"],
                                 capture_output=True, text=True).stdout.strip()
            sysctls[key] = out
    return {
        "links": sorted((_norm(l.get("ifname")), l.get("linkinfo", {}).get("info_kind", ""), l.get("mtu"),
                         _norm(l.get("master")), "UP" in l.get("flags", [])) for l in links),
        "addresses": sorted((_norm(a.get("ifname")), i.get("local"), i.get("prefixlen"))
                            for a in addrs for i in a.get("addr_info", []) if i.get("family") == "inet"),
        "routes": sorted((r.get("table", "main"), r.get("type", "unicast"), r.get("dst"), r.get("gateway", ""),
                          _norm(r.get("dev")), tuple(sorted(r.get("flags", [])))) for r in routes),
        "neighbours": sorted((n.get("dst"), _norm(n.get("dev"))) for n in neigh),
        "fdb": sorted((f.get("dst"), _norm(f.get("ifname"))) for f in fdb),
        "hairpin": sorted(_norm(p.get("ifname")) for p in ports if p.get("hairpin")),
        "mark": alias.replace(lab, "LAB"),
        "sysctls": sysctls,
    }


def sample(the_plan: Plan) -> list[str]:
    """Namespace names (relative to the lab) worth comparing: vpc, first and last node, three pods."""
    spaces = the_plan.namespaces
    nodes = [ns for ns in spaces if ns.role is Role.NODE]
    pods = [ns for ns in spaces if ns.role is Role.POD]
    picked = [spaces[0], nodes[0], nodes[-1]] + ([pods[0], pods[len(pods) // 2], pods[-1]] if pods else [])
    lab = the_plan.lab.lab.name
    return list(dict.fromkeys(ns.name[len(lab) + 1:] for ns in picked))


def totals(shapes: list[dict]) -> dict[str, int]:
    keys = ("links", "addresses", "routes", "neighbours", "fdb", "hairpin")
    return {k: sum(len(s[k]) for s in shapes) for k in keys}


# -- the benchmark ----------------------------------------------------------------------------
def size_run(args, base: str, nodes: int, per_node: int, workdir: Path) -> dict:
    pods = nodes * per_node
    names = {"netlab": f"{base}n", "in-process": f"{base}p", "iproute2": f"{base}i"}
    paths = {}
    for approach, name in names.items():
        paths[approach] = workdir / f"{name}.yaml"
        paths[approach].write_text(lab_text(name, nodes, per_node, args.backend))
    plans = {a: lab_ops.make_plan(loader.load_file(str(paths[a]))) for a in ("netlab", "iproute2")}
    builders = {"netlab": NetlabCli(paths["netlab"], names["netlab"]),
                "in-process": NetlabInProcess(paths["in-process"], names["in-process"]),
                "iproute2": Iproute2(plans["iproute2"], workdir / "script")}
    order = [a for a in ("netlab", "in-process", "iproute2") if a in args.approaches]
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
    return {"nodes": nodes, "pods_per_node": per_node, "pods": pods,
            "namespaces": len(plans["netlab"].namespaces),
            "runs": {a: [asdict(r) for r in rs] for a, rs in runs.items()},
            "summary": {a: summarize(rs) for a, rs in runs.items()},
            "equivalence": comparison}


def compare(plan_n: Plan, plan_i: Plan, names: dict[str, str]) -> dict:
    """Both builds, namespace by namespace over a sample: the same objects?"""
    lab_n, lab_i = names["netlab"], names["iproute2"]
    shapes_n, shapes_i, differ = [], [], []
    for rel in sample(plan_n):
        a, b = shape(f"{lab_n}.{rel}", lab_n), shape(f"{lab_i}.{rel}", lab_i)
        shapes_n.append(a)
        shapes_i.append(b)
        for key in a:
            if a[key] != b[key]:
                differ.append({"namespace": rel, "what": key, "netlab": a[key], "iproute2": b[key]})
    return {"sampled": sample(plan_n),
            "namespaces": {"netlab": len(lab_namespaces(lab_n)), "iproute2": len(lab_namespaces(lab_i))},
            "objects": {"netlab": totals(shapes_n), "iproute2": totals(shapes_i)},
            "equivalent": not differ and len(lab_namespaces(lab_n)) == len(lab_namespaces(lab_i)),
            "differences": differ[:10]}


def summarize(runs: list[Run]) -> dict:
    def med(values):
        values = [v for v in values if v is not None]
        return round(statistics.median(values), 4) if values else None
    ok = [r for r in runs if not r.error]
    return {"up_s": med(r.up_s for r in ok), "down_s": med(r.down_s for r in ok),
            "up_cpu_s": med(r.up_cpu_s for r in ok),
            "up_min_s": round(min((r.up_s for r in ok if r.up_s is not None), default=0), 4) or None,
            "peak_rss_mb": round(max((r.peak_rss_mb for r in ok if r.peak_rss_mb), default=0), 1) or None,
            "errors": [r.error for r in runs if r.error]}


def table(results: list[dict]) -> str:
    head = (f"{'approach':<11} {'nodes':>5} {'pods':>5} {'up s':>7} {'down s':>7} {'ms/pod':>7} "
            f"{'up/ip2':>7} {'down/ip2':>8} {'up cpu s':>8} {'peak RSS':>9}")
    lines = [head, "-" * len(head)]

    def num(value, width, digits=2):
        return f"{value:{width}.{digits}f}" if value is not None else f"{'-':>{width}}"

    for res in results:
        ref = res["summary"].get("iproute2", {})
        for approach, s in res["summary"].items():
            up, down = s["up_s"], s["down_s"]
            per_pod = up / res["pods"] * 1000 if up and res["pods"] else None
            r_up = up / ref["up_s"] if up and ref.get("up_s") else None
            r_down = down / ref["down_s"] if down and ref.get("down_s") else None
            rss = f"{s['peak_rss_mb']:6.1f} MB" if s["peak_rss_mb"] else f"{'-':>9}"
            lines.append(f"{approach:<11} {res['nodes']:>5} {res['pods']:>5} {num(up, 7)} {num(down, 7)} "
                         f"{num(per_pod, 7)} {num(r_up, 7)} {num(r_down, 8)} {num(s.get('up_cpu_s'), 8)} {rss}")
            for err in s["errors"]:
                lines.append(f"  ! {err}")
        eq = res.get("equivalence")
        if eq:
            verdict = "same objects" if eq["equivalent"] else "DIFFERENT objects"
            lines.append(f"  {verdict}: namespaces {eq['namespaces']}, sampled {len(eq['sampled'])}: "
                         f"{eq['objects']['netlab']}")
            for d in eq["differences"]:
                lines.append(f"  ! {d['namespace']} {d['what']}: netlab {d['netlab']} / iproute2 {d['iproute2']}")
    return "\n".join(lines)


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
    args.approaches = ["netlab", "iproute2"] + ([] if args.no_inprocess else ["in-process"])
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
    for suffix in ("n", "p"):
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
