"""netlab's pod launcher: a single-threaded helper that makes pod sandboxes and starts containers.

Run as a file (`python3 -I -S launcher.py`, standard library only) by `netlab up`, so that
`up` itself never forks with a preexec_fn while its progress thread runs: this process has one
thread, so it may fork and change namespaces in the child before exec.

It reads one JSON request per line on stdin and answers one JSON line on stdout for each, when
that request is done. Requests are carried out as they arrive, several at once (a child each):
a caller that sends several gives each an "id", which its answer repeats.

  {"op": "pod", "netns": PATH, "hostname": H, "hosts": FILE, "resolv": FILE, "env": {...},
   "mounts": [[SOURCE, TARGET, READONLY], ...]}
      a pod sandbox: a child joins the pod's network namespace, unshares mount, UTS, IPC and
      PID namespaces and forks the pod's PID 1; that one makes its mounts private, sets the
      hostname, bind-mounts FILEs on /etc/hosts and /etc/resolv.conf and each SOURCE on its
      TARGET (which must exist; read-only when READONLY, like a pod's volume mounts), detaches
      /run/netns, mounts its own /proc and execs `catatonit -P` (the pause process: reaps
      orphans, runs nothing). "mounts" is optional. Answer {"pid": PID-as-the-host-sees-it}.
  {"op": "run", "init": PID, "argv": [...], "env": {...}, "cwd": DIR, "log": FILE,
   "setpriv": [...] or null}
      a container: a child enters every namespace of the pod's init, forks (the grandchild is
      in the pod's PID namespace, adopted by the pod's init once the child exits), starts a
      session, and execs `setpriv ARGS -- argv` (capabilities, no_new_privs) with exactly
      `env`. Answer {"pid": PID}.
  {"op": "daemon", "netns": PATH, "argv": [...], "env": {...}, "cwd": DIR, "log": FILE,
   "setpriv": [...] or null}
      a lab process that belongs to no pod (the lab's responder): a child joins the network
      namespace PATH and forks the process, which starts a session and execs as a container
      does (same stdio, setpriv and environment rules). Answer {"pid": PID}.

Errors before exec come back as {"error": "..."}; nothing of netlab's environment is passed on.
"""
from __future__ import annotations

import ctypes
import json
import os
import selectors
import signal
import sys
from contextlib import suppress

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
MNT_DETACH = 2
PAUSE = ("catatonit", "-P")

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, what: str) -> None:
    _check(_libc.mount(source.encode() if source else None, target.encode(),
                       fstype.encode() if fstype else None, flags, None), what)


def _which(cmd: str, path: str) -> str | None:
    if "/" in cmd:
        return cmd if os.access(cmd, os.X_OK) else None
    for folder in path.split(":"):
        full = os.path.join(folder or ".", cmd)
        if os.path.isfile(full) and os.access(full, os.X_OK):
            return full
    return None


def _default_signals() -> None:
    """A container starts as a runtime starts it: no signal held or ignored (netlab's Python
    ignores SIGPIPE; a background job or a CI runner may ignore or block SIGINT)."""
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    for sig in signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}:
        with suppress(OSError, ValueError):
            signal.signal(sig, signal.SIG_DFL)


def _null_stdio() -> None:
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)


def _bind(source: str, target: str, readonly: bool) -> None:
    """A volume mount: `source` on the existing `target`, in this (the pod's) mount namespace only."""
    if not os.path.exists(target):
        raise FileNotFoundError(2, f"cannot mount {source} on {target}: {target} does not exist")
    _mount(source, target, None, MS_BIND | MS_REC, f"bind-mount {target}")
    if readonly:   # a bind mount takes MS_RDONLY only on a remount
        _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY, f"remount {target} read-only")


def _pod_init(req: dict) -> None:
    """Runs as PID 1 of the new PID namespace, until it execs the pause process."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE, "mount --make-rprivate /")   # nothing leaks to the host
    name = req["hostname"].encode()
    _check(_libc.sethostname(name, len(name)), "sethostname")
    _mount(req["hosts"], "/etc/hosts", None, MS_BIND, "bind-mount /etc/hosts")
    _mount(req["resolv"], "/etc/resolv.conf", None, MS_BIND, "bind-mount /etc/resolv.conf")
    for source, target, readonly in req.get("mounts", ()):
        _bind(source, target, bool(readonly))
    _libc.umount2(b"/run/netns", MNT_DETACH)   # the pod does not see (nor keep alive) other namespaces
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mount proc")
    os.setsid()
    _null_stdio()
    pause = _which(PAUSE[0], req["env"].get("PATH", os.defpath))
    if pause is None:
        raise OSError(2, f"{PAUSE[0]} not found (install the catatonit package)")
    os.execve(pause, list(PAUSE), req["env"])


def _container(req: dict) -> None:
    """Runs in the pod's PID namespace, until it execs setpriv (or the command, privileged)."""
    os.setsid()
    os.chdir(req["cwd"])
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    log = os.open(req["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    env = req["env"]
    argv = req["argv"]
    command = _which(argv[0], env.get("PATH", os.defpath))
    if command is None:
        raise FileNotFoundError(2, f"No such file or directory: {argv[0]!r}")
    if req.get("setpriv") is None:
        os.execve(command, argv, env)
    setpriv = _which("setpriv", "/usr/bin:/bin:/usr/sbin:/sbin")
    if setpriv is None:
        raise FileNotFoundError(2, "setpriv not found (install util-linux)")
    os.execve(setpriv, ["setpriv", *req["setpriv"], "--", command, *argv[1:]], env)


def _enter_pod(init: int) -> None:
    fds = [os.open(f"/proc/{init}/ns/{ns}", os.O_RDONLY) for ns in ("ipc", "uts", "net", "pid", "mnt")]
    for fd, flag in zip(fds, (CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET, CLONE_NEWPID, CLONE_NEWNS)):
        _check(_libc.setns(fd, flag), "setns")
        os.close(fd)


NETNS_DIR = "/run/netns"
_netns_dir: int | None = None   # netlab's /run/netns, opened before this process left its mount namespace


def _leave_netns_mounts() -> None:
    """This launcher's own mount namespace, without /run/netns: a pod's mount namespace is a copy
    of it, and copying (then detaching) one nsfs mount per namespace of every lab made each pod
    dearer as labs grew (~3 ms a pod at 1,000 namespaces). The namespace files are opened through
    a descriptor of netlab's /run/netns taken before, where their mounts still are."""
    global _netns_dir
    _netns_dir = os.open(NETNS_DIR, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    if _libc.unshare(CLONE_NEWNS) != 0:
        return   # the pods detach /run/netns themselves, as before
    # private first, so that the detach below never propagates to netlab's (the host's) mounts
    if _libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) == 0:
        _libc.umount2(NETNS_DIR.encode(), MNT_DETACH)


def _open_netns(path: str) -> int:
    folder, name = os.path.split(path)
    if _netns_dir is not None and folder == NETNS_DIR:
        return os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=_netns_dir)
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


def _child(req: dict, report: int) -> None:
    """The first child: prepares the namespaces, forks the process that stays, reports its pid."""
    errors_r, errors_w = os.pipe2(os.O_CLOEXEC)   # closed by a successful exec: EOF means started
    if req["op"] == "pod":
        fd = _open_netns(req["netns"])
        _check(_libc.setns(fd, CLONE_NEWNET), "setns into the pod's network namespace")
        _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID), "unshare")
        pid = os.fork()
        if pid == 0:
            _run(errors_r, errors_w, _pod_init, req)
    elif req["op"] == "daemon":
        fd = _open_netns(req["netns"])
        _check(_libc.setns(fd, CLONE_NEWNET), "setns into the lab's network namespace")
        os.close(fd)
        pid = os.fork()
        if pid == 0:
            _run(errors_r, errors_w, _container, req)
    else:
        pid = _fork_in_pod(int(req["init"]), errors_r, errors_w, req)
    os.close(errors_w)
    message = b""
    while chunk := os.read(errors_r, 4096):
        message += chunk
    if message:
        raise RuntimeError(message.decode(errors="replace"))
    os.write(report, json.dumps({"pid": pid}).encode())


def _run(errors_r: int, errors_w: int, body, *args) -> None:
    os.close(errors_r)
    try:
        _default_signals()
        body(*args)
    except BaseException as err:   # noqa: BLE001 - reported to the parent, never raised past exec
        os.write(errors_w, str(err).encode()[:4000])
    os._exit(127)


def _fork_in_pod(init: int, errors_r: int, errors_w: int, req: dict) -> int:
    """A container process whose parent is the pod's init (which reaps it, as in a pod sharing
    its process namespace); returns its pid as this (the host's) PID namespace numbers it.

    setns into a PID namespace affects only children, so: a middle process is forked into the
    pod, forks the container and exits; the orphan goes to the reaper of the middle's namespace,
    the pod's init. The middle waits until this process has read its child's host pid."""
    host_proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)   # the pod mounts its own
    _enter_pod(init)
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    go_r, go_w = os.pipe2(os.O_CLOEXEC)
    middle = os.fork()
    if middle == 0:
        os.close(ready_r)
        os.close(go_w)
        if os.fork() == 0:
            os.close(ready_w)
            os.close(go_r)
            _run(errors_r, errors_w, _container, req)
        os.write(ready_w, b"1")
        os.read(go_r, 1)   # until the launcher knows the container's pid
        os._exit(0)
    os.close(ready_w)
    os.close(go_r)
    os.read(ready_r, 1)
    children = os.open(f"{middle}/task/{middle}/children", os.O_RDONLY | os.O_CLOEXEC, dir_fd=host_proc)
    pid = int(os.read(children, 4096).split()[0])
    os.close(children)
    os.close(host_proc)
    os.close(go_w)
    os.close(ready_r)
    os.waitpid(middle, 0)
    return pid


def _fork_handler(req: dict) -> tuple[int, int]:
    """A child that carries out one request and writes its answer to a pipe; (pid, pipe)."""
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        os.close(report_r)
        try:
            _child(req, report_w)
            code = 0
        except BaseException as err:   # noqa: BLE001
            os.write(report_w, json.dumps({"error": str(err)}).encode())
            code = 1
        os._exit(code)
    os.close(report_w)
    return pid, report_r


def _finish(pid: int, answer: bytes, req: dict) -> dict:
    os.waitpid(pid, 0)
    try:
        out = json.loads(answer) if answer else {"error": "the launcher's child died before it answered"}
    except ValueError:
        out = {"error": "the launcher's child answered garbage"}
    if "id" in req:
        out["id"] = req["id"]
    return out


def main() -> int:
    """Requests are carried out as they come, several at once (each by a child of its own); an
    answer is written when its request is done, with the request's "id" when it had one. A caller
    that sends one request and waits sees the old one-at-a-time protocol."""
    _leave_netns_mounts()
    sel = selectors.DefaultSelector()
    sel.register(0, selectors.EVENT_READ, None)
    pending = b""
    reading = True
    busy: dict[int, tuple[int, dict, list[bytes]]] = {}   # answer pipe -> (child, request, chunks)
    while reading or busy:
        for key, _ in sel.select():
            if key.data is None:
                chunk = os.read(0, 65536)
                if not chunk:
                    reading = False
                    sel.unregister(0)
                    continue
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    try:
                        req = json.loads(line)
                        pid, pipe = _fork_handler(req)
                    except (OSError, ValueError) as err:
                        _answer({"error": str(err)})
                        continue
                    busy[pipe] = (pid, req, [])
                    sel.register(pipe, selectors.EVENT_READ, pipe)
            else:
                pipe = key.data
                chunk = os.read(pipe, 65536)
                if chunk:
                    busy[pipe][2].append(chunk)
                    continue
                sel.unregister(pipe)
                os.close(pipe)
                pid, req, chunks = busy.pop(pipe)
                _answer(_finish(pid, b"".join(chunks), req))
    return 0


def _answer(answer: dict) -> None:
    os.write(1, (json.dumps(answer) + "\n").encode())


if __name__ == "__main__":
    sys.exit(main())
