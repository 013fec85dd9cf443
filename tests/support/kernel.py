"""Helpers for root tests: read the kernel with iproute2 (an independent view), run the CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from netlab.kernel import netns, procs


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
    """Processes anywhere on the machine that carry this lab's container marker."""
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and procs.carries_marker(int(e), lab)]
