"""Node daemons: real processes that belong to a node (wireguard-go; routing daemons alike),
started in the node's namespaces with its own /run and /etc (netlab.kernel.nodefs).

They are owned like containers: each carries the lab's marker in its own environment
(netlab.kernel.procs), lives in the node's network namespace, and is therefore found by
`down` from the kernel alone (no state file needed) and stopped by pid and start time.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from . import netns, nodefs, procs

NODE_SUBJECT = "node/"        # ENV_POD of a node daemon: "node/<node>", never a pod key


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


def running(lab: str, node: str, netns_name: str, daemon: str) -> list[procs.ProcRecord]:
    """The live daemons `daemon` of `node`, found from the kernel: the node's namespace + the marker."""
    inode = netns.inode(netns_name)
    if not inode:
        return []
    return [rec for rec in procs.find_lab_processes(lab, {inode})
            if rec.pod == NODE_SUBJECT + node and rec.container == daemon]


def run(netns_name: str, root: Path, node: str, argv: list[str], stdin: str | None = None,
        timeout: float = 30) -> subprocess.CompletedProcess:
    """Run a short command as the node would (its netns, /run, /etc); output captured."""
    return subprocess.run(nodefs.wrap(netns_name, nodefs.prepare(root), node, argv), input=stdin,
                          capture_output=True, text=True, timeout=timeout, check=False)
