"""`down`: remove a lab, only what the kernel proves is netlab's; also what `up` uses to remove
namespaces it rebuilds and to roll back.

Kept apart from ops/lab.py so `netlab down` imports only what removing needs (no lab file, plan,
backends or optional stages): start-up time is most of a small lab's `down`.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from ..kernel import labresponder, limits, netns, procs, sandbox, signals
from ..kernel.apply import Kernel
from ..kernel.inventory import Mark, owned
from ..kernel.privileges import require_privileges
from ..names import Role
from . import state
from .record import LabRecord


@dataclass
class Timings:
    """The wall time of each stage of a run, in order (`--timings` prints them)."""

    stages: list[tuple[str, float]] = field(default_factory=list)
    _t: float = field(default_factory=time.perf_counter)

    def mark(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages.append((stage, now - self._t))
        self._t = now


def stop_containers(lab: str, old: LabRecord | None, names: list[str], existing: dict[str, Mark]) -> int:
    """Stop the pods of the namespaces in `names` (their inits: the kernel kills the rest), and
    any other process the kernel shows there with the lab's marker (older-style containers, node
    daemons such as wireguard-go, capture's tcpdumps, the lab's responder with the VPC namespace).
    While the VPC namespace stays, the lab's responder closes the sockets it holds in these pods
    first (they would keep the namespaces alive). Returns how many processes were running."""
    if not names:
        return 0
    subjects = {existing[n].subject for n in names if n in existing}
    vpc = next((n for n, mark in existing.items() if mark.role == Role.VPC), None)
    if vpc is not None and vpc not in names:   # the lab's responder stays: it closes these pods' sockets
        labresponder.drop(lab, vpc, sorted(existing[n].subject for n in names
                                           if n in existing and existing[n].role == Role.POD), state.lab_dir(lab))
    records = [c for pod in (old.pods if old else ()) if pod.key in subjects for c in pod.containers]
    inodes = {ino for ino in (netns.inode(n) for n in names) if ino}
    found = sandbox.survey(lab, inodes)
    # older containers carried the marker themselves; pod inits carry it too, but go with their pods
    legacy = [r for r in found.marked if r.container != sandbox.ROLE_INIT]
    running = sandbox.stop(found, records)
    running += len([r for r in legacy if procs.alive(r)])
    procs.stop(legacy, lab)
    return running


PARALLEL_FROM = 64   # namespaces: from how many `down` unmounts them from several threads
UNMOUNTERS = 8


def unpublish_all(names: list[str], progress=None) -> None:
    """Unmount and unlink /run/netns/NAME for each of `names` (progress() after each). A big lab's
    unmounts wait on the kernel (RCU grace periods, and the teardown of the pods just stopped: up to
    13 ms each while 10,000 pods die, against ~12 µs for an idle namespace on 6.18), so several
    threads wait at once: 10,000 took 1.6–2.3 s from 8 threads, 5.5 s from one."""
    if len(names) < PARALLEL_FROM:
        for name in names:
            netns.unpublish(name)
            if progress:
                progress()
        return
    from concurrent.futures import ThreadPoolExecutor   # lazily: only big labs
    with ThreadPoolExecutor(UNMOUNTERS) as pool:
        for _ in pool.map(netns.unpublish, names):
            if progress:
                progress()


def remove_placeholders(lab: str, record: LabRecord | None) -> None:
    """A crash between creating /run/netns/NAME and mounting on it leaves a file; netlab's
    carry its stamp (the namespace's mark). Files without it are someone else's: left alone."""
    for name in (record.pending or ()) if record else ():
        stamp = netns.placeholder_of(name)
        mark = Mark.parse(stamp.strip()) if stamp else None
        if mark is not None and mark.lab == lab:
            os.unlink(netns.path(name))


@dataclass
class DownResult:
    """What `down` removed and stopped, the look-alike names it left alone, and its stages' times."""

    lab: str
    removed: int
    stopped: int
    left_alone: list[str]
    timings: Timings = field(default_factory=Timings)


def down(lab_name: str, progress=None) -> DownResult:
    """Remove every namespace and container of lab `lab_name` that the kernel proves is netlab's.

    progress(total) is called once with the number of namespaces found, then progress() per removal.
    """
    timings = Timings()
    require_privileges("down")
    limits.raise_open_files()
    # a Ctrl-C, SIGTERM or SIGHUP lets the removal finish, then stops netlab
    with state.locked(lab_name), signals.shielded(), Kernel() as kernel:
        record = state.load(lab_name)
        existing = owned(kernel, lab_name)
        lookalikes = [n for n in netns.listed() if n.startswith(f"{lab_name}.") and n not in existing]
        timings.mark("inventory")
        stopped = stop_containers(lab_name, record, list(existing), existing)
        kernel.close()
        timings.mark("stop containers")
        if progress:
            progress(len(existing))
        unpublish_all(list(reversed(list(existing))), progress)
        remove_placeholders(lab_name, record)
        timings.mark("remove namespaces")
        lookalikes = [n for n in lookalikes if os.path.exists(netns.path(n))]
        state.remove(lab_name)
        timings.mark("remove state")
    return DownResult(lab_name, len(existing), stopped, lookalikes, timings)


def all_lab_names() -> list[str]:
    """Labs known from state files or from marked namespaces (state may be gone)."""
    names = set(state.labs())
    if os.geteuid() == 0 and os.path.isdir(netns.NETNS_DIR):
        with Kernel() as kernel:
            names.update(mark.lab for mark in owned(kernel, None).values())
    return sorted(names)
