"""Node daemons (BIRD; any backend's per-node daemon): started in the node with its own /run
and /etc (netlab.kernel.nodefs), owned like containers, found and stopped the same way.

Ownership is provable from the kernel alone: a daemon lives in its node's network namespace
and carries the lab's marker (NETLAB_LAB, as containers do) plus NETLAB_NODE and NETLAB_DAEMON
in its own environment, so `down` finds it with no state file (procs.find_lab_processes), and
`netlab node stop` finds one node's daemon the same way. It runs in the foreground: the pid
netlab starts is the daemon's (nodefs's wrapper execs every step).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ..core.daemon import DaemonRun
from . import netns, nodefs, procs

ENV_NODE = "NETLAB_NODE"
ENV_DAEMON = "NETLAB_DAEMON"


def missing_programs(daemons: list[DaemonRun]) -> list[DaemonRun]:
    """Daemons whose program is not installed (one entry per program)."""
    seen: set[str] = set()
    out = []
    for daemon in daemons:
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


def start(lab: str, netns_name: str, root: Path, node: str, daemon: DaemonRun, log: str) -> procs.ProcRecord:
    """Start `daemon` as a process of node `node` (its netns, /run, /etc, hostname), detached."""
    write_files(root, daemon)
    env = dict(os.environ, **{procs.ENV_LAB: lab, ENV_NODE: node, ENV_DAEMON: daemon.name})
    argv = nodefs.wrap(netns_name, root, node, list(daemon.argv))
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                cwd="/", env=env, start_new_session=True)
    proc.returncode = 0   # never reaped by Popen's bookkeeping: the pid stays ours to manage
    return procs.ProcRecord(node, daemon.name, proc.pid, procs.start_time(proc.pid) or 0, log)


def daemon_env(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return {}
    return {k.decode(errors="replace"): v.decode(errors="replace")
            for k, _, v in (item.partition(b"=") for item in raw.split(b"\0") if b"=" in item)}


def running(lab: str, netns_name: str, name: str) -> list[procs.ProcRecord]:
    """The live daemons `name` of lab `lab` in the node namespace `netns_name`, from the kernel."""
    ino = netns.inode(netns_name)
    if not ino:
        return []
    out = []
    for rec in procs.find_lab_processes(lab, {ino}):
        env = daemon_env(rec.pid)
        # the daemon leads its own session; its wrapper's short-lived helpers (mount) do not
        if env.get(ENV_DAEMON) == name and process_state(rec.pid) not in ("Z", "X", None) \
                and _session(rec.pid) == rec.pid:
            out.append(procs.ProcRecord(env.get(ENV_NODE, ""), name, rec.pid, rec.start, ""))
    return out


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


def stop(lab: str, netns_name: str, name: str) -> int:
    """Stop daemon `name` of one node (SIGTERM, then SIGKILL); how many were running."""
    found = running(lab, netns_name, name)
    procs.stop(found, lab)
    return len(found)
