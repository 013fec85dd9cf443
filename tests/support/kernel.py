"""Helpers for root tests: read the kernel with iproute2 (an independent view), run the CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from netlab.kernel import netns, procs, sandbox


def ip(ns: str, *args: str) -> list:
    out = subprocess.run(["ip", "-n", ns, "-j", "-d", *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out or "[]")


def bridge(ns: str, *args: str) -> list:
    out = subprocess.run(["bridge", "-n", ns, "-j", *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out or "[]")


def netlab(*args: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "netlab", *args], capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"netlab {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


def pings(src_ns: str, ip_addr: str) -> bool:
    """One reply of up to three echo requests: the first may wait on ARP on a loaded machine."""
    proc = procs.popen_in(src_ns, ["ping", "-c", "3", "-i", "0.2", "-W", "2", ip_addr],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc.wait() == 0


def lab_namespaces(lab: str) -> list[str]:
    return [n for n in netns.listed() if n.startswith(f"{lab}.")]


def lab_processes(lab: str) -> list[int]:
    """The lab's containers, wherever they are: every process in the PID namespace of one of the
    lab's pod inits (any process carrying the lab's init marker, PID 1 of its namespace, in a lab
    namespace or not), and any process carrying the lab's marker itself (netlab bench's tools).
    The inits themselves are counted by lab_inits; zombies waiting for their parent are not
    running processes."""
    inits = _inits(lab)
    marked = [int(e) for e in os.listdir("/proc") if e.isdigit() and procs.carries_marker(int(e), lab)]
    own = {i.pid for i in inits}
    return sorted(p for p in (set(sandbox.members(inits)) | set(marked)) - own if not _zombie(p))


def lab_inits(lab: str) -> list[int]:
    return sorted(i.pid for i in _inits(lab) if not _zombie(i.pid))


def _inits(lab: str) -> list[sandbox.Init]:
    """Pod inits of the lab, found from their marker alone (their namespaces may be gone)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                net = os.stat(f"/proc/{entry}/ns/net").st_ino
            except OSError:
                continue
            init = sandbox.inspect_init(int(entry), lab, {net})
            if init is not None:
                found.append(init)
    return found


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return True
    return raw[raw.rfind(b")") + 2:].split()[0] == b"Z"
