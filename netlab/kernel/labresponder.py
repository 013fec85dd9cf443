"""The lab's responder, seen from netlab: started, found, handed each pod's sockets, told to drop them.

One process per lab (kernel/responder.py) serves every container that has ports and no command.
It cannot live in every pod's PID namespace, so it lives in none: it runs in the lab's VPC
network namespace (every lab has one, and no pod or user process lives there), in the host's
PID namespace, in a session of its own, as root without any capability (setpriv: empty bounding
set, no_new_privs), with exactly the lab's marker as its environment.

netlab creates each pod's listening sockets itself, inside the pod's network namespace (setns,
socket, bind, listen, setns back), and hands them to the responder over its control socket
(SCM_RIGHTS). A socket stays in the namespace it was created in: the pod's socket tables (`ss`
in the pod, readiness) show it, traffic to the pod's address reaches it, and it holds the pod's
namespace for as long as it is open. So before a pod's namespace goes (rebuild, removal), netlab
asks the responder to close that pod's sockets; `down` kills the responder with the lab.

Ownership, proven from the kernel: a process living in the lab's marked VPC namespace, leading its
own session, with the lab's marker, pod "lab" and container "responder" in its environment.
A container cannot be one: containers live in their pod's network and PID namespaces.
"""
from __future__ import annotations

import json
import os
import resource
import socket
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import KernelFeatureMissing, NetlabError
from . import kernelmods, netns, procs, sandbox

SUBJECT = "lab"          # NETLAB_POD of the responder: never a pod key (those hold a "/")
ROLE = "responder"       # its NETLAB_CONTAINER
CONTROL = "responder.sock"
LOG = "responder.log"
BATCH_FDS = 250          # descriptors per message (the kernel's SCM_MAX_FD is 253)
CONNECT_WAIT = 10.0      # for a responder just started to bind its control socket
ANSWER_TIMEOUT = 30.0
BACKLOG = 128


@dataclass(frozen=True)
class Served:
    """A container the responder serves: its pod (key, network namespace, name to answer with)."""
    pod: str
    netns: str
    reply: str
    container: str
    ports: tuple[tuple[int, str], ...]
    log: str


def check_kernel(ports: set[str]) -> None:
    """Before anything is built: the protocols of the served ports (`ports`: "TCP", "UDP",
    "SCTP") must work without making the kernel load a module. SCTP is a module on Debian's
    kernels (`sctp`); opening its first socket would autoload it, so an unloaded one is refused
    with the modprobe to run, and a kernel without it (no module tree) is named."""
    if "SCTP" not in ports:
        return
    state = kernelmods.module_state("sctp")
    if state is kernelmods.ModuleState.LOADABLE:
        raise KernelFeatureMissing("a container declares an SCTP port for the built-in responder, and this kernel "
                                   "has the sctp module but has not loaded it; netlab never loads a module itself; "
                                   "nothing was created — load it first: " + kernelmods.modprobe_hint(["sctp"]))
    if state is kernelmods.ModuleState.UNKNOWN:   # nothing can be autoloaded here: just try
        try:
            socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP).close()
        except OSError as err:
            raise KernelFeatureMissing(f"a container declares an SCTP port for the built-in responder, and this "
                                       f"kernel has no SCTP ({err.strerror}: CONFIG_IP_SCTP is off); nothing was "
                                       "created — declare TCP or UDP ports") from err


def argv() -> list[str]:
    # run as a file, isolated and without site-packages: it needs only the standard library
    return [sys.executable, "-I", "-S", os.path.join(os.path.dirname(__file__), "responder.py"),
            "--control", CONTROL]


def find(lab: str, vpc_netns: str, lab_dir: Path) -> procs.ProcRecord | None:
    """The lab's live responder, found from the kernel (its namespace, session and marker)."""
    inode = netns.inode(vpc_netns)
    if not inode:
        return None
    for rec in procs.find_lab_processes(lab, {inode}):
        if rec.pod == SUBJECT and rec.container == ROLE and not procs.is_zombie(rec.pid) and _leads(rec.pid):
            return replace(rec, log=str(lab_dir / "logs" / LOG))
    return None


def serves(containers: tuple[procs.ProcRecord, ...], responder: procs.ProcRecord | None) -> bool:
    """Every one of a pod's containers (one at least) is served by the lab's `responder`: their
    ports are sockets netlab bound in the pod itself, so they are bound while it runs."""
    return (responder is not None and bool(containers)
            and all((c.pid, c.start) == (responder.pid, responder.start) for c in containers))


def _leads(pid: int) -> bool:
    try:
        return os.getsid(pid) == pid
    except OSError:
        return False


def start(launcher: sandbox.Launcher, lab: str, vpc_netns: str, lab_dir: Path) -> procs.ProcRecord:
    """Start the lab's responder (its working directory, where it binds its control socket: the
    lab's private run directory; its output: logs/responder.log)."""
    try:
        os.unlink(lab_dir / CONTROL)   # a killed responder's socket
    except FileNotFoundError:
        pass
    log = str(lab_dir / "logs" / LOG)
    try:
        return launcher.daemon(netns.path(vpc_netns), SUBJECT, ROLE, lab, argv(), (), str(lab_dir), log)
    except OSError as err:
        raise NetlabError(f"the lab's responder could not start: {err}") from err


def stop(rec: procs.ProcRecord, lab: str) -> None:
    procs.stop([rec], lab)


class Control:
    """A connection to the responder's control socket."""

    def __init__(self, rec: procs.ProcRecord, lab_dir: Path) -> None:
        folder = os.open(lab_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        # through the directory's descriptor: a Unix socket path is at most 107 bytes
        path = f"/proc/self/fd/{folder}/{CONTROL}"
        deadline = time.monotonic() + CONNECT_WAIT
        pause = 0.002   # a responder just started is ready within milliseconds: asked often at first
        try:
            while True:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                try:
                    self.sock.connect(path)
                    break
                except (FileNotFoundError, ConnectionRefusedError) as err:
                    self.sock.close()
                    if not procs.alive(rec) or time.monotonic() > deadline:
                        raise OSError(err.errno, f"the lab's responder (pid {rec.pid}) does not answer on "
                                                 f"{lab_dir / CONTROL}: {err.strerror}") from err
                    time.sleep(pause)
                    pause = min(pause * 2, 0.05)
        finally:
            os.close(folder)
        self.sock.settimeout(ANSWER_TIMEOUT)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Control:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ask(self, request: dict, fds: list[int] = ()) -> int:
        socket.send_fds(self.sock, [json.dumps(request).encode()], list(fds))
        answer = self.sock.recv(65536)
        if not answer:
            raise OSError("the lab's responder closed its control connection")
        reply = json.loads(answer)
        if "error" in reply:
            raise OSError(reply.get("errno") or 0, f"the lab's responder refused: {reply['error']}")
        return int(reply["ok"])

    def drop(self, pods: list[str]) -> int:
        """Close every socket of these pods (keys); how many were closed."""
        return self.ask({"op": "drop", "pods": pods}) if pods else 0

    def add(self, served: list[Served]) -> None:
        """Each container's sockets, made in its pod's namespace, handed over in batches. A port
        that cannot be bound is a NetlabError naming the pod, container and port."""
        switch = netns.Switcher()
        # this process holds a batch's sockets until they are sent: stay well within its open-files limit
        room = resource.getrlimit(resource.RLIMIT_NOFILE)[0] - len(os.listdir("/proc/self/fd"))
        most = max(1, min(BATCH_FDS, room // 2))
        batch: list[Served] = []
        socks: list[socket.socket] = []
        try:
            for item in served:
                if socks and len(socks) + len(item.ports) > most:
                    self._send(batch, socks)
                    batch, socks = [], []
                socks += _listen(switch, item)
                batch.append(item)
            if batch:
                self._send(batch, socks)
        finally:
            for sock in socks:
                sock.close()
            switch.close()

    def _send(self, batch: list[Served], socks: list[socket.socket]) -> None:
        self.ask({"op": "add", "containers": [{"key": f"{s.pod}/{s.container}", "reply": s.reply,
                                               "ports": [list(p) for p in s.ports]} for s in batch]},
                 [s.fileno() for s in socks])
        for sock in socks:
            sock.close()   # the responder holds its own descriptors now
        socks.clear()


def _listen(switch: netns.Switcher, item: Served) -> list[socket.socket]:
    made: list[socket.socket] = []
    fd = netns.open_ns(item.netns)
    try:
        with switch.inside(fd):
            for port, proto in item.ports:
                kind = socket.SOCK_DGRAM if proto == "UDP" else socket.SOCK_STREAM
                sock = socket.socket(socket.AF_INET, kind, socket.IPPROTO_SCTP if proto == "SCTP" else 0)
                made.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("0.0.0.0", port))
                    if proto != "UDP":
                        sock.listen(BACKLOG)
                except OSError as err:
                    raise NetlabError(f"pod {item.pod}: container {item.container!r} (the built-in responder) "
                                      f"cannot listen on {port}/{proto}: {err.strerror}") from err
    except BaseException:
        for sock in made:
            sock.close()
        raise
    finally:
        os.close(fd)
    return made


def note(item: Served, rec: procs.ProcRecord, lab_dir: Path) -> None:
    """The container's own log (what `netlab logs POD -c NAME` shows): which process serves it."""
    fd = os.open(item.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"served by the lab's responder (pid {rec.pid}, log {lab_dir / 'logs' / LOG}): "
                + ", ".join(f"{p}/{proto}" for p, proto in item.ports) + "\n")


def drop(lab: str, vpc_netns: str, pods: list[str], lab_dir: Path) -> None:
    """Close the sockets of `pods` (keys) so that their namespaces can go; a responder that does
    not answer is stopped (the next `up` starts a new one and hands it every pod's sockets)."""
    rec = find(lab, vpc_netns, lab_dir)
    if rec is None or not pods:
        return
    try:
        with Control(rec, lab_dir) as control:
            control.drop(pods)
    except (OSError, ValueError):
        stop(rec, lab)
