"""Node daemons: real processes that belong to a node — a backend's per-node daemon, planned as
core.daemon.DaemonRun (BIRD for bgp, in each node and in the VPC router between racks), or one a
build step starts itself (wireguard-go for wireguard) — run in the node's namespaces with its own
/run and /etc (netlab.kernel.nodefs).

They are owned like containers: each carries the lab's marker in its own environment
(netlab.kernel.procs: NETLAB_LAB, with NETLAB_POD "node/<node>" and NETLAB_CONTAINER the daemon's
name), lives in the node's network namespace, and is therefore found by `down` from the kernel
alone (no state file needed), by `netlab node stop` one node at a time, and stopped by pid and
start time. It runs in the foreground: the pid netlab starts is the daemon's (nodefs's wrapper
execs every step).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ..core.daemon import DaemonRun
from . import netns, nodefs, procs

NODE_SUBJECT = "node/"        # ENV_POD of a node daemon: "node/<node>", never a pod key


def missing_programs(runs: list[DaemonRun]) -> list[DaemonRun]:
    """Planned daemons whose program is not installed (one entry per program)."""
    seen: set[str] = set()
    out = []
    for daemon in runs:
        if daemon.argv[0] not in seen and shutil.which(daemon.argv[0]) is None:
            out.append(daemon)
        seen.add(daemon.argv[0])
    return out


def write_files(root: Path, daemon: DaemonRun) -> None:
    """The daemon's configuration and directories under the node's own /etc and /run."""
    for sub in daemon.dirs:
        (root / sub).mkdir(mode=0o755, parents=True, exist_ok=True)
    for rel, text in daemon.files:
        path = root / rel
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".new")
        tmp.write_text(text)
        os.replace(tmp, path)


def spawn(lab: str, node: str, netns_name: str, root: Path, daemon: str, argv: list[str],
          log: Path) -> procs.ProcRecord:
    """Start `argv` as daemon `daemon` of `node`, detached (its own session), output to `log`."""
    env = dict(os.environ, **{procs.ENV_LAB: lab, procs.ENV_POD: NODE_SUBJECT + node, procs.ENV_CONTAINER: daemon})
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(nodefs.wrap(netns_name, nodefs.prepare(root), node, argv),
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True, cwd=str(root))
    start = procs.start_time(proc.pid)
    proc.returncode = 0   # Popen must not reap it: the pid stays ours to manage (as procs.spawn)
    return procs.ProcRecord(NODE_SUBJECT + node, daemon, proc.pid, start or 0, str(log))


def start(lab: str, node: str, netns_name: str, root: Path, daemon: DaemonRun, log: Path) -> procs.ProcRecord:
    """Start a planned daemon: its files written under the node's directory, then spawned."""
    write_files(nodefs.prepare(root), daemon)
    return spawn(lab, node, netns_name, root, daemon.name, list(daemon.argv), log)


def running(lab: str, node: str, netns_name: str, daemon: str) -> list[procs.ProcRecord]:
    """The live daemons `daemon` of `node`, found from the kernel: the node's namespace + the marker.

    Only the daemon itself counts: it leads its own session, while the wrapper's short-lived
    helpers (mount), which inherit its environment, do not; zombies are gone already."""
    inode = netns.inode(netns_name)
    if not inode:
        return []
    return [rec for rec in procs.find_lab_processes(lab, {inode})
            if rec.pod == NODE_SUBJECT + node and rec.container == daemon
            and process_state(rec.pid) not in ("Z", "X", None) and _session(rec.pid) == rec.pid]


def stop(lab: str, node: str, netns_name: str, daemon: str) -> int:
    """Stop daemon `daemon` of one node (SIGTERM, then SIGKILL); how many were running."""
    found = running(lab, node, netns_name, daemon)
    procs.stop(found, lab)
    return len(found)


def run(netns_name: str, root: Path, node: str, argv: list[str], stdin: str | None = None,
        timeout: float = 30) -> subprocess.CompletedProcess:
    """Run a short command as the node would (its netns, /run, /etc); output captured."""
    return subprocess.run(nodefs.wrap(netns_name, nodefs.prepare(root), node, argv), input=stdin,
                          capture_output=True, text=True, timeout=timeout, check=False)


def daemon_env(pid: int) -> dict[str, str]:
    """A process's environment (its marker), empty when it is gone."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return {}
    return {k.decode(errors="replace"): v.decode(errors="replace")
            for k, _, v in (item.partition(b"=") for item in raw.split(b"\0") if b"=" in item)}


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def process_state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2:].split()[0].decode()
