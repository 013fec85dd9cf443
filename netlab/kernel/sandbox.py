"""Pod sandboxes: the pause process of a pod, its files, and how netlab proves a process is a pod's.

Each pod gets, besides its network namespace, its own mount, UTS, IPC and PID namespaces,
held by a PID 1 that only reaps orphans (`catatonit -P`, the pause process; Debian's package).
The pod's hostname, /etc/hosts and /etc/resolv.conf live in those namespaces only (the files
under the lab's run directory, bind-mounted in the pod's mount namespace). Containers join all
of them, with the default container capabilities, no_new_privs, and an environment of their
own. Killing the pod's PID 1 makes the kernel kill every process of the pod, whatever it did
(scrubbed environment, double fork, setsid): a PID namespace cannot outlive its init.

Ownership, proven from the kernel: a pod's init is PID 1 of its PID namespace (NSpid), lives in
one of the lab's marked network namespaces, and carries the lab's marker in its environment
(netlab gives it that environment; the pause process never changes it). A container is the
lab's when it lives in such an init's PID namespace.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field

from .procs import ENV_CONTAINER, ENV_LAB, ENV_POD, ProcRecord, start_time, wait_exited

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ROLE_INIT = "init"   # ENV_CONTAINER of a pod's init

# kubelet's managed /etc/hosts (pkg/kubelet/kubelet_pods.go: managedHostsHeader, hostsEntriesFromHostAliases)
HOSTS_HEADER = "# Kubernetes-managed hosts file.\n"
HOSTS_LOCAL = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
               "fe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")


def hosts_text(pod_ip: str, hostname: str) -> str:
    return f"{HOSTS_HEADER}{HOSTS_LOCAL}{pod_ip}\t{hostname}\n"


def container_env(hostname: str, env: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """A container's whole environment: PATH, HOSTNAME, HOME and its `env:` list (which may
    override them, as in Kubernetes). Nothing of netlab's own environment."""
    out = {"PATH": PATH, "HOSTNAME": hostname, "HOME": "/root"}
    out.update(env)
    return out


def setpriv_args(capabilities: tuple[str, ...] | None) -> list[str] | None:
    """setpriv's options for a container with `capabilities` (None: privileged, run as is).

    Root keeps, across exec, exactly the bounding set (its inheritable and ambient sets are
    emptied), so the bounding set is the container's capability set; no_new_privs on top."""
    if capabilities is None:
        return None
    bounding = ",".join(["-all"] + [f"+{c.lower()}" for c in capabilities])
    return ["--no-new-privs", "--inh-caps=-all", "--ambient-caps=-all", f"--bounding-set={bounding}"]


@dataclass(frozen=True)
class Mount:
    """A pod volume: the host's `source` bind-mounted on `target` (which must exist) in the pod only."""

    source: str
    target: str
    readonly: bool = True


def missing_targets(mounts: tuple[Mount, ...]) -> list[str]:
    """The targets that do not exist here (the pod's mount namespace starts as a copy of this one)."""
    return [m.target for m in mounts if not os.path.exists(m.target)]


@dataclass(frozen=True)
class PodStart:
    """A pod sandbox to start: its name (namespace/name), network namespace, hostname, the folder
    holding its hosts and resolv.conf, and the volumes bound in its mount namespace."""
    pod: str
    netns_path: str
    hostname: str
    files: str      # the path its files start with: FILES.hosts and FILES.resolv.conf (write_pod_files)
    mounts: tuple[Mount, ...] = ()


@dataclass(frozen=True)
class ContainerStart:
    """A container to start in the pod whose init is `init_pid`: its command, environment (the
    whole of it), capabilities (None: privileged), working directory and log file."""
    init_pid: int
    pod: str
    container: str
    argv: tuple[str, ...]
    env: dict[str, str]
    capabilities: tuple[str, ...] | None
    cwd: str
    log: str


class Launcher:
    """The pod launcher process (kernel/launcher.py), started without preexec_fn."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    WINDOW = 8   # requests in flight at once: pods start in parallel, the launcher's pipes stay small

    def spawn(self) -> "Launcher":
        """Start the launcher process now, without waiting for it: its interpreter starts while
        the caller goes on (building the network), ready by the time the first pod is asked for."""
        self._pipes()
        return self

    def _pipes(self) -> tuple:
        if self.proc is None:
            script = os.path.join(os.path.dirname(__file__), "launcher.py")
            self.proc = subprocess.Popen([sys.executable, "-I", "-S", script], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, env={"PATH": PATH}, text=True)
        assert self.proc.stdin and self.proc.stdout
        return self.proc.stdin, self.proc.stdout

    def _answer(self) -> dict:
        line = self._pipes()[1].readline()
        if not line:
            raise OSError("the pod launcher stopped")
        return json.loads(line)

    def _ask(self, request: dict) -> int:
        (result,) = self._ask_all([request])
        if isinstance(result, OSError):
            raise result
        return result

    def _ask_all(self, requests: list[dict]) -> list:
        """Each request's pid, in order, or the OSError it failed with. Up to WINDOW are carried
        out at once."""
        stdin, _ = self._pipes()
        results: list = [None] * len(requests)
        sent = done = 0
        while done < len(requests):
            while sent < len(requests) and sent - done < self.WINDOW:
                stdin.write(json.dumps(dict(requests[sent], id=sent)) + "\n")
                sent += 1
            stdin.flush()
            answer = self._answer()
            results[answer["id"]] = OSError(answer["error"]) if "error" in answer else int(answer["pid"])
            done += 1
        return results

    def finish(self) -> None:
        """No more requests: the launcher exits on its own (reaped by `close`, later)."""
        if self.proc is not None and not self.proc.stdin.closed:   # type: ignore[union-attr]
            self.proc.stdin.close()   # type: ignore[union-attr]

    def close(self) -> None:
        if self.proc is not None:
            self.finish()
            self.proc.wait()
            self.proc.stdout.close()  # type: ignore[union-attr]
            self.proc = None

    def __enter__(self) -> "Launcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start_pods(self, lab: str, pods: list[PodStart]) -> list[ProcRecord | OSError]:
        """The pods' inits, started several at once; each one's record, or why it failed."""
        requests = [{"op": "pod", "netns": p.netns_path, "hostname": p.hostname,
                     "env": {"PATH": PATH, ENV_LAB: lab, ENV_POD: p.pod, ENV_CONTAINER: ROLE_INIT},
                     "hosts": f"{p.files}.hosts", "resolv": f"{p.files}.resolv.conf",
                     "mounts": [[m.source, m.target, m.readonly] for m in p.mounts]}
                    for p in pods]
        return [pid if isinstance(pid, OSError) else ProcRecord(p.pod, ROLE_INIT, pid, start_time(pid) or 0, "")
                for p, pid in zip(pods, self._ask_all(requests))]

    def run_containers(self, starts: list[ContainerStart]) -> list[ProcRecord | OSError]:
        """The containers, started several at once in their pods; each one's record, or why it failed."""
        requests = [{"op": "run", "init": c.init_pid, "argv": list(c.argv), "env": c.env, "cwd": c.cwd, "log": c.log,
                     "setpriv": setpriv_args(c.capabilities)} for c in starts]
        return [pid if isinstance(pid, OSError) else ProcRecord(c.pod, c.container, pid, start_time(pid) or 0, c.log)
                for c, pid in zip(starts, self._ask_all(requests))]

    def daemon(self, netns_path: str, subject: str, role: str, lab: str, argv: list[str],
               capabilities: tuple[str, ...] | None, cwd: str, log: str) -> ProcRecord:
        """A lab process of no pod (the lab's responder) in the network namespace at `netns_path`,
        carrying the lab's marker (pod `subject`, container `role`) in its environment."""
        env = {"PATH": PATH, ENV_LAB: lab, ENV_POD: subject, ENV_CONTAINER: role}
        pid = self._ask({"op": "daemon", "netns": netns_path, "argv": argv, "env": env, "cwd": cwd, "log": log,
                         "setpriv": setpriv_args(capabilities)})
        return ProcRecord(subject, role, pid, start_time(pid) or 0, log)


def write_pod_files(files: str, pod_ip: str, hostname: str, resolv: str) -> None:
    """The pod's hosts file (kubelet's) and its resolv.conf (`resolv`: netlab.core.resolvconf's text),
    FILES.hosts and FILES.resolv.conf: files side by side, in a folder the caller made, no folder per
    pod (a 10,000-pod lab's `down` spent 2.4 s removing 10,000 folders on a disk-backed /run)."""
    for name, text in (("hosts", hosts_text(pod_ip, hostname)), ("resolv.conf", resolv)):
        fd = os.open(f"{files}.{name}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(text)


@dataclass(frozen=True)
class Init:
    """A pod's init as the kernel shows it: pid, start time, pod, and its network and PID namespaces."""

    pid: int
    start: int
    pod: str
    netns: int      # inode of its network namespace
    pidns: int      # inode of the PID namespace it is PID 1 of


def _environ(pid: int) -> dict[bytes, bytes]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        return dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)


def _is_ns_init(pid: int) -> bool:
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"NSpid:"):
                ids = line.split()[1:]
                return len(ids) > 1 and ids[-1] == b"1"
    return False


def inspect_init(pid: int, lab: str, netns_inodes: set[int]) -> Init | None:
    """The init at `pid` when the kernel shows it is one of lab `lab`'s pods, else None."""
    try:
        net = os.stat(f"/proc/{pid}/ns/net").st_ino
        if net not in netns_inodes:
            return None
        return _proven_init(pid, lab, _environ(pid), net, os.stat(f"/proc/{pid}/ns/pid").st_ino)
    except (OSError, ValueError):
        return None


def _proven_init(pid: int, lab: str, env: dict[bytes, bytes], net: int, pidns: int) -> Init | None:
    """The init at `pid` (living in the lab's namespace `net`, with environment `env`), when it
    carries the lab's init marker and is PID 1 of its PID namespace; else None. OSError: it is gone."""
    if env.get(ENV_LAB.encode()) != lab.encode() or env.get(ENV_CONTAINER.encode()) != ROLE_INIT.encode():
        return None
    if not _is_ns_init(pid):
        return None
    start = start_time(pid)
    return Init(pid, start, env.get(ENV_POD.encode(), b"").decode(), net, pidns) if start is not None else None


def find_inits(lab: str, netns_inodes: set[int]) -> list[Init]:
    """Every pod init of lab `lab` living in one of `netns_inodes` (the lab's marked namespaces)."""
    if not netns_inodes:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            init = inspect_init(int(entry), lab, netns_inodes)
            if init is not None:
                found.append(init)
    return found


def init_of(lab: str, netns_inode: int, recorded: int | None = None) -> Init | None:
    """The init of the pod whose network namespace is `netns_inode`: the recorded pid when the
    kernel confirms it, else found by scanning /proc."""
    if recorded:
        init = inspect_init(recorded, lab, {netns_inode})
        if init is not None:
            return init
    inits = find_inits(lab, {netns_inode})
    return inits[0] if inits else None


def pidns_of(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None


def members(inits: list[Init]) -> list[int]:
    """Every running process in the PID namespaces of `inits` except the inits themselves."""
    spaces = {i.pidns for i in inits}
    own = {i.pid for i in inits}
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in own and pidns_of(int(entry)) in spaces and not _zombie(int(entry)):
            out.append(int(entry))
    return out


@dataclass(frozen=True)
class Survey:
    """What one pass over /proc finds of a lab, in its marked network namespaces."""
    inits: list[Init]            # its pods' inits
    marked: list[ProcRecord]     # other processes carrying its marker (node daemons, tools, the responder)
    members: int                 # running processes in the inits' PID namespaces, inits not counted
    # init pid -> a pidfd opened before it was proven: `stop` signals the very process, without reading
    # its start time again (10,000 reads); an init without one (out of descriptors) is checked again
    pidfds: dict[int, int] = field(default_factory=dict)

    def close(self) -> None:
        for fd in self.pidfds.values():
            os.close(fd)
        self.pidfds.clear()


def survey(lab: str, netns_inodes: set[int]) -> Survey:
    """The lab's pod inits, its other marked processes and the count of its pods' processes, in
    one pass over /proc (a 10,000-pod lab has 20,000 processes: three passes cost seconds). Each
    is proven from the kernel as find_inits and procs.find_lab_processes prove them."""
    if not netns_inodes:
        return Survey([], [], 0)
    inits: list[Init] = []
    marked: list[ProcRecord] = []
    pidfds: dict[int, int] = {}
    spaces: dict[int, int] = {}   # pid -> its PID namespace
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            spaces[pid] = os.stat(f"/proc/{pid}/ns/pid").st_ino
            net = os.stat(f"/proc/{pid}/ns/net").st_ino
            if net not in netns_inodes:
                continue
            env = _environ(pid)
        except (OSError, ValueError):
            continue
        if env.get(ENV_LAB.encode()) != lab.encode():
            continue
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        except OSError:
            pidfd = None
        try:
            init = _proven_init(pid, lab, env, net, spaces[pid])   # as inspect_init, from what was read above
        except OSError:   # gone meanwhile
            if pidfd is not None:
                os.close(pidfd)
            continue
        if init is not None:
            inits.append(init)
            if pidfd is not None:
                pidfds[pid] = pidfd
            continue
        if pidfd is not None:
            os.close(pidfd)
        start = start_time(pid)
        if start is not None:
            marked.append(ProcRecord(env.get(ENV_POD.encode(), b"").decode(),
                                     env.get(ENV_CONTAINER.encode(), b"").decode(), pid, start, ""))
    pods = {i.pidns for i in inits}
    own = {i.pid for i in inits}
    members = sum(1 for pid, space in spaces.items() if space in pods and pid not in own and not _zombie(pid))
    return Survey(inits, marked, members, pidfds)


def stop(found: Survey, containers: list[ProcRecord], grace: float = 2.0) -> int:
    """SIGTERM the recorded containers living in the PID namespaces of the survey's inits, wait up
    to `grace` for them, then SIGKILL the inits: the kernel kills whatever is left in each pod.
    Returns the number of processes that were running in the pods (the survey counted them).
    The survey's pidfds are closed."""
    try:
        return _stop(found, containers, grace)
    finally:
        found.close()


def _stop(found: Survey, containers: list[ProcRecord], grace: float) -> int:
    inits = found.inits
    spaces = {i.pidns for i in inits}
    live = [r for r in containers if start_time(r.pid) == r.start and pidns_of(r.pid) in spaces]
    for rec in live:
        try:
            os.killpg(rec.pid, signal.SIGTERM) if os.getpgid(rec.pid) == rec.pid else os.kill(rec.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    wait_exited(live, grace)
    for init in inits:
        try:
            if init.pid in found.pidfds:
                signal.pidfd_send_signal(found.pidfds[init.pid], signal.SIGKILL)
            elif start_time(init.pid) == init.start:
                os.kill(init.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return found.members


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
        return raw[raw.rfind(b")") + 2:].split()[0] == b"Z"
    except OSError:
        return True
