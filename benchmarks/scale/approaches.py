"""The ways a lab is built and removed: netlab's CLI, netlab in this process, the iproute2 script, Mininet.

Each builder has up(run) and down(run), filling in the Run it is given.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from netlab.core.plan import Plan
from netlab.kernel import netns
from netlab.ops import lab as lab_ops
from netlab.spec import loader
from netlab.spec.labtext import lab_yaml

from .iproute2 import Script, iproute2_script
from .measure import NETLAB, Run, lab_namespaces, lab_processes, pss_kb, run_child


# -- the lab -----------------------------------------------------------------------------
def lab_text(name: str, nodes: int, per_node: int, backend: str, ports: tuple[int, ...] = ()) -> str:
    """The compact form; with `ports`, every pod declares them (served by the lab's responder)."""
    text = lab_yaml(name, backend, pod_subnet="172.16.0.0/12", service_subnet="10.96.0.0/12", scale=(nodes, per_node))
    if ports:
        text = text.replace(f"podsPerNode: {per_node}}}",
                            f"podsPerNode: {per_node}, ports: [{', '.join(map(str, ports))}]}}")
    return text



# -- netlab ---------------------------------------------------------------------------------
def parse_timings(stderr: str) -> dict[str, float]:
    stages = {}
    for line in stderr.splitlines():
        m = re.match(r"^\s+(\S.*?)\s+([0-9.]+) ms$", line)
        if m:
            stages[m.group(1)] = round(float(m.group(2)) / 1000, 4)
    return stages


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
        pids = lab_processes(self.name)   # what stays of netlab while the lab is up
        run.processes, run.pss_mb = len(pids), round(pss_kb(pids) / 1024, 1)

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
            script.netns_del.unlink()   # cleanup() deletes what it lists
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
