"""Container processes: started inside a pod's namespace, stopped only by recorded pid + start time."""
from __future__ import annotations

import errno
import os
import select
import signal
import subprocess
import time
from dataclasses import asdict, dataclass

from . import netns

ENV_LAB = "NETLAB_LAB"          # every container carries its lab, pod and container name
ENV_POD = "NETLAB_POD"
ENV_CONTAINER = "NETLAB_CONTAINER"


@dataclass(frozen=True)
class ProcRecord:
    """A process netlab started, as the state file records it: whose it is, its pid and start time, its log."""

    pod: str
    container: str
    pid: int
    start: int      # /proc/PID/stat field 22: clock ticks after boot; tells a reused pid apart
    log: str

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ProcRecord:
        """TypeError when `data` has other keys than a ProcRecord's."""
        return cls(**data)


def _stat(pid: int) -> list[bytes] | None:
    """/proc/PID/stat's fields after the command name (state first), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2:].split()


def start_time(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[19]) if fields else None   # field 22 counts from 1 and includes pid and comm


def alive(rec: ProcRecord) -> bool:
    """The recorded process runs: same pid and start time, and not a zombie (a process that exited
    stays one until its parent, or the reaper it was left to, collects it)."""
    fields = _stat(rec.pid)
    return fields is not None and int(fields[19]) == rec.start and fields[0] != b"Z"


def spawn(netns_fd: int, lab: str, pod: str, container: str, argv: list[str], log: str,
          cwd: str) -> ProcRecord:
    """Start argv inside the namespace `netns_fd`, detached, output appended to `log`."""
    env = dict(os.environ, **{ENV_LAB: lab, ENV_POD: pod, ENV_CONTAINER: container})

    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                cwd=cwd, env=env, start_new_session=True, pass_fds=(netns_fd,),
                                preexec_fn=netns.child_joining(netns_fd))
    start = start_time(proc.pid)
    # Popen's own bookkeeping would reap the child; keep the pid ours to manage
    proc.returncode = 0
    return ProcRecord(pod, container, proc.pid, start or 0, log)


def carries_marker(pid: int, lab: str) -> bool:
    """True when process `pid` carries lab `lab`'s container marker in its own environment."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f"{ENV_LAB}={lab}\0".encode() in f.read() + b"\0"
    except OSError:
        return False


def stop(records: list[ProcRecord], lab: str, grace: float = 2.0) -> None:
    """SIGTERM each live recorded process of lab `lab`, SIGKILL what remains.

    Live means: same pid and start time as recorded, and the lab's marker in its environment,
    so a recycled pid after a reboot is never signalled.
    """
    live = [rec for rec in records if alive(rec) and carries_marker(rec.pid, lab)]
    pids = {rec.pid for rec in records if start_time(rec.pid) == rec.start}   # zombies of ours collected too
    for rec in live:
        _signal(rec, signal.SIGTERM)
    live = wait_exited(live, grace, reap=pids)
    for rec in live:
        _signal(rec, signal.SIGKILL)
    _reap(pids)


def wait_exited(records: list[ProcRecord], timeout: float, reap: set[int] = frozenset()) -> list[ProcRecord]:
    """Wait up to `timeout` s until each recorded process has exited (a zombie counts as exited);
    the ones still running. Waits on pidfds, so it returns as soon as the last one is gone
    (no polling interval); `reap`: pids of our own children to collect on the way."""
    fds: dict[int, ProcRecord] = {}
    try:
        for rec in records:
            try:
                fd = os.pidfd_open(rec.pid)
            except ProcessLookupError:
                continue
            except OSError as err:
                if err.errno == errno.EINVAL:   # its parent is reaping it right now: the pid has no process left
                    continue
                raise
            if start_time(rec.pid) == rec.start:   # the pidfd is the recorded process, not a reused pid
                fds[fd] = rec
            else:
                os.close(fd)
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        pending = set(fds)
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for fd, _ in poller.poll(left * 1000):
                poller.unregister(fd)
                pending.discard(fd)
        _reap(set(reap))
        return [fds[fd] for fd in pending]
    finally:
        for fd in fds:
            os.close(fd)


def _signal(rec: ProcRecord, sig: int) -> None:
    if start_time(rec.pid) != rec.start:
        return
    try:
        if os.getpgid(rec.pid) == rec.pid:
            os.killpg(rec.pid, sig)   # the container's session: its children go too
        else:
            os.kill(rec.pid, sig)
    except ProcessLookupError:
        pass


def is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
        return raw[raw.rfind(b")") + 2:].split()[0] == b"Z"
    except OSError:
        return True


def _reap(pids: set[int]) -> None:
    """Collect the exit of those of `pids` that are our own children (containers this process
    started); never another child's, whose status its owner still wants."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue


def find_lab_processes(lab: str, inodes: set[int]) -> list[ProcRecord]:
    """Processes living in one of `inodes` (the lab's namespaces) that carry the lab's marker.

    This is how a deleted state file or a crashed `up` still finds its containers:
    ownership comes from the kernel (the namespace) and the process's own environment.
    """
    found: list[ProcRecord] = []
    if not inodes:
        return found
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino not in inodes:
                continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
        except OSError:
            continue
        if env.get(ENV_LAB.encode()) != lab.encode():
            continue
        start = start_time(pid)
        if start is not None:
            found.append(ProcRecord(env.get(ENV_POD.encode(), b"").decode(),
                                    env.get(ENV_CONTAINER.encode(), b"").decode(), pid, start, ""))
    return found


def popen_in(netns_name: str, argv: list[str], **kwargs) -> subprocess.Popen:
    """Start argv inside the named namespace (for exec, ping, iperf, probes)."""
    fd = netns.open_ns(netns_name)

    try:
        return subprocess.Popen(argv, pass_fds=(fd,), preexec_fn=netns.child_joining(fd), **kwargs)
    finally:
        os.close(fd)
