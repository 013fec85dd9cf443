"""Measuring a run: the Run record, a child's wall and CPU time and peak RSS, the kernel's settling."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from netlab.kernel import netns
from netlab.kernel.procs import ENV_CONTAINER, ENV_LAB
from netlab.kernel.sandbox import ROLE_INIT

ROOT = Path(__file__).resolve().parents[2]   # the tree whose netlab is measured
NETLAB = [sys.executable, "-m", "netlab"]
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
    pss_mb: float | None = None       # PSS of every process of the lab while it is up (netlab runs)
    processes: int | None = None      # how many those are: pod inits, containers, the responder
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


def lab_namespaces(lab: str) -> list[str]:
    return [n for n in netns.listed() if n.startswith(f"{lab}.")]


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


# -- the lab's processes ----------------------------------------------------------------------
def lab_processes(lab: str) -> list[int]:
    """Every process of a lab that is up: those carrying its marker (pod inits, the lab's
    responder, node daemons) and every process in the PID namespace of one of its pod inits."""
    marker = f"{ENV_LAB}={lab}".encode()
    marked, spaces = set(), set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if marker in env:
            marked.add(int(entry))
            if f"{ENV_CONTAINER}={ROLE_INIT}".encode() in env:
                spaces.add(os.stat(f"/proc/{entry}/ns/pid").st_ino)
    members = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}/ns/pid").st_ino in spaces:
                    members.add(int(entry))
            except OSError:
                continue
    return sorted(marked | members)


def pss_kb(pids: list[int]) -> int:
    """The sum of the processes' proportional set sizes (/proc/PID/smaps_rollup), in kB."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
                for line in f:
                    if line.startswith(b"Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return total


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
