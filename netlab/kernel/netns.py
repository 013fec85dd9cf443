"""Named network namespaces, created and entered in-process (unshare/setns via libc).

A namespace is made the way `ip netns add` makes one, without forking: the calling
thread unshares its network namespace, the new one is bind-mounted on /run/netns/NAME,
and the thread returns to where it was. Python 3.11 has no os.setns, hence ctypes.
"""
from __future__ import annotations

import ctypes
import socket
import time
import struct
import errno
import functools
import os
from contextlib import contextmanager
from typing import Iterator

from . import signals

NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_SHARED = 1 << 20
MNT_DETACH = 2
NSFS_MAGIC = 0x6E736673

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str, name: str = "") -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}", name or None)


# Errors a container gives when it may not mount on /run/netns (no CAP_SYS_ADMIN, an LSM
# profile denying mount, /run read-only or not a place where mounts can be made).
MOUNT_DENIED = (errno.EPERM, errno.EACCES, errno.EINVAL, errno.EROFS)
MOUNT_NEEDS = ("netlab bind-mounts each namespace on /run/netns, which needs CAP_SYS_ADMIN and CAP_NET_ADMIN "
               "and a writable /run where namespaces can be bind-mounted; in a container run it with "
               "--privileged and a tmpfs on /run (docker run --privileged --tmpfs /run ...)")


def _mount_error(code: int, what: str) -> OSError:
    text = f"{what}: {os.strerror(code)}"
    return OSError(code, f"{text} — {MOUNT_NEEDS}" if code in MOUNT_DENIED else text)


def path(name: str) -> str:
    """/run/netns/NAME for a plain name; anything that is not one (a path, '..', read from a
    state file) is refused before it reaches the file system."""
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise FileNotFoundError(errno.ENOENT, "not a namespace name", name)
    return os.path.join(NETNS_DIR, name)


def _prepare_dir() -> None:
    """Make /run/netns a shared mount point, as iproute2 does, so mounts propagate."""
    try:
        os.makedirs(NETNS_DIR, exist_ok=True)
    except OSError as err:
        raise _mount_error(err.errno, "mkdir " + NETNS_DIR) from err
    if _libc.mount(b"", NETNS_DIR.encode(), b"none", MS_SHARED | MS_REC, None) == 0:
        return
    if ctypes.get_errno() != errno.EINVAL:   # EINVAL: not a mount point yet, made one below
        raise _mount_error(ctypes.get_errno(), "mount --make-shared " + NETNS_DIR)
    if _libc.mount(NETNS_DIR.encode(), NETNS_DIR.encode(), b"none", MS_BIND | MS_REC, None) != 0:
        raise _mount_error(ctypes.get_errno(), "mount --bind " + NETNS_DIR)
    if _libc.mount(b"", NETNS_DIR.encode(), b"none", MS_SHARED | MS_REC, None) != 0:
        raise _mount_error(ctypes.get_errno(), "mount --make-shared " + NETNS_DIR)


class Switcher:
    """Moves the calling thread between namespaces and always back to its own."""

    def __init__(self) -> None:
        self.home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self._dir_ready = False

    def close(self) -> None:
        if self.home >= 0:
            os.close(self.home)
            self.home = -1

    def ready_dir(self) -> None:
        """/run/netns made a shared mount point, as iproute2 makes it (once; publish does it first)."""
        if not self._dir_ready:
            _prepare_dir()
            self._dir_ready = True

    def go_home(self) -> None:
        _check(_libc.setns(self.home, CLONE_NEWNET), "setns back to the original namespace")

    def enter(self, fd: int) -> None:
        """Move the calling thread into namespace `fd` (go_home() brings it back)."""
        _check(_libc.setns(fd, CLONE_NEWNET), "setns")

    @contextmanager
    def inside(self, fd: int) -> Iterator[None]:
        self.enter(fd)
        try:
            yield
        finally:
            self.go_home()

    @contextmanager
    def fresh(self) -> Iterator[int]:
        """Inside a new, unnamed namespace; yields its fd. Gone when the fd is closed."""
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        try:
            fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            yield fd
        finally:
            self.go_home()

    def publish(self, fd: int, name: str, stamp: str) -> None:
        """Bind-mount the namespace `fd` on /run/netns/NAME (EEXIST if the name is taken).

        The mount point is created holding `stamp`, hidden once the namespace is mounted on
        it: a crash between the two leaves a file that says whose it is (see placeholder_of).
        """
        self.ready_dir()
        target = path(name)
        try:
            _create_stamped(target, stamp)
        except OSError as err:
            if err.errno not in MOUNT_DENIED:
                raise   # FileExistsError: the name is taken, the caller says so
            raise _mount_error(err.errno, f"create {target}") from err
        source = f"/proc/{os.getpid()}/fd/{fd}".encode()
        if _libc.mount(source, target.encode(), b"none", MS_BIND, None) != 0:
            code = ctypes.get_errno()
            os.unlink(target)
            raise _mount_error(code, f"mount --bind on {target}")


def _create_stamped(target: str, stamp: str) -> None:
    """Create `target` (FileExistsError if taken) already holding `stamp`: the file is written
    unnamed (O_TMPFILE) and linked in, so a kill at any moment leaves the stamped file or
    nothing, never an empty name that no one could prove is netlab's."""
    folder = os.open(os.path.dirname(target), os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _link_stamped(folder, os.path.basename(target), stamp)
    finally:
        os.close(folder)


def _link_stamped(folder: int, name: str, stamp: str) -> None:
    # linked relative to the directory's fd: through the path, /run/netns mounted on itself
    # resolves to another mount than the unnamed file's, and link() fails with EXDEV
    try:
        out = os.open(".", os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o444, dir_fd=folder)
    except OSError as err:
        if err.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
            raise
        out = None   # a file system without O_TMPFILE: create, then write (a short window)
    if out is None:
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444, dir_fd=folder)
        try:
            os.write(out, stamp.encode())
        finally:
            os.close(out)
        return
    try:
        os.write(out, stamp.encode())
        os.link(f"/proc/self/fd/{out}", name, dst_dir_fd=folder, follow_symlinks=True)
    finally:
        os.close(out)


PR_SET_PDEATHSIG = 1
CLONE_NEWUTS = 0x04000000


def child_joining(fd: int | None, die_with_parent: bool = False):
    """A preexec_fn: the child enters namespace `fd` (None: a new namespace of its own) before
    it execs, or exits 126 without running anything outside it. With die_with_parent the
    kernel kills the child (SIGKILL) when the process that started it dies."""
    parent = os.getpid()

    def join() -> None:
        signals.as_exec_expects()
        if die_with_parent and (_libc.prctl(PR_SET_PDEATHSIG, 9) != 0 or os.getppid() != parent):
            os._exit(125)
        result = _libc.unshare(CLONE_NEWNET) if fd is None else _libc.setns(fd, CLONE_NEWNET)
        if result != 0:
            os._exit(126)
    return join


TCP_LISTEN, UDP_UNCONNECTED = "0A", "07"   # socket states in /proc/net/{tcp,udp}


def bound_ports(proc_net: str, table: str, state: str) -> set[int]:
    """Local ports of the sockets in `state` in /proc/.../net/<table> (tcp, tcp6, udp, udp6);
    empty where the table is absent (no IPv6)."""
    ports: set[int] = set()
    try:
        with open(f"{proc_net}/{table}") as f:
            next(f, None)
            for line in f:
                fields = line.split()
                if len(fields) > 3 and fields[3] == state:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    except (OSError, ValueError):
        pass
    return ports


def placeholder_of(name: str) -> str | None:
    """The stamp in /run/netns/NAME when it is a file no namespace is mounted on, else None."""
    try:
        fd = os.open(path(name), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if is_nsfs(fd):
            return None
        return os.read(fd, 4096).decode(errors="replace")
    finally:
        os.close(fd)


def open_ns(name: str) -> int:
    """An fd of the named namespace; FileNotFoundError if there is none."""
    fd = os.open(path(name), os.O_RDONLY | os.O_CLOEXEC)
    if not is_nsfs(fd):
        os.close(fd)
        raise FileNotFoundError(errno.ENOENT, "not a network namespace", path(name))
    return fd


def is_nsfs(fd: int) -> bool:
    """True when fd is a namespace (nsfs), not an empty placeholder file."""
    return _statfs_type(fd) == NSFS_MAGIC


class _StatFs(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_byte * 112)]


def _statfs_type(fd: int) -> int:
    buf = _StatFs()
    if _libc.fstatfs(fd, ctypes.byref(buf)) != 0:
        return 0
    return buf.f_type


def inode(name: str) -> int | None:
    try:
        return os.stat(path(name)).st_ino
    except OSError:
        return None


def listed() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def unpublish(name: str) -> None:
    """Remove /run/netns/NAME: the kernel frees the namespace once nothing holds it."""
    target = path(name)
    if _libc.umount2(target.encode(), MNT_DETACH) != 0:
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOENT):   # EINVAL: not mounted (a placeholder)
            raise OSError(code, f"umount {target}: {os.strerror(code)}", name)
    try:
        os.unlink(target)
    except FileNotFoundError:
        pass


def write_sysctl(key: str, value: str) -> None:
    """Write /proc/sys/KEY for the namespace the calling thread is in."""
    with open(f"/proc/sys/{key}", "w") as f:
        f.write(value)


NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY = 4, 20
_DIAG_REQ = struct.Struct("=BBBxI48x")           # inet_diag_req_v2: family, protocol, ext, states, sockid
TCP_LISTEN_STATE, UDP_UNCONNECTED_STATE = 10, 7   # the socket states above, as numbers


def listening_ports(protocol: int) -> set[int]:
    """Local ports of the IPv4 and IPv6 sockets here that listen (TCP) or are bound and
    unconnected (UDP), asked with sock_diag: the kernel walks only its listening table for
    TCP, where /proc/net/tcp walks every socket of the machine. Read in the calling thread's
    namespace; empty on a kernel without inet_diag for the protocol."""
    state = TCP_LISTEN_STATE if protocol == socket.IPPROTO_TCP else UDP_UNCONNECTED_STATE
    ports: set[int] = set()
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_SOCK_DIAG)
    try:
        for family in (socket.AF_INET, socket.AF_INET6):
            body = _DIAG_REQ.pack(family, protocol, 0, 1 << state)
            sock.send(struct.pack("=IHHII", 16 + len(body), SOCK_DIAG_BY_FAMILY, 0x301, 1, 0) + body)
            done = False
            while not done:
                data = sock.recv(1 << 16)
                offset = 0
                while offset + 16 <= len(data):
                    length, kind = struct.unpack_from("=IH", data, offset)
                    if kind in (2, 3) or length < 16:   # NLMSG_ERROR, NLMSG_DONE
                        done = True
                        break
                    ports.add(struct.unpack_from(">H", data, offset + 16 + 4)[0])   # inet_diag_msg.id.sport
                    offset += (length + 3) & ~3
    except OSError:
        return ports
    finally:
        sock.close()
    return ports


_PROTOCOLS = (("TCP", socket.IPPROTO_TCP, ("tcp", "tcp6"), TCP_LISTEN),
              ("UDP", socket.IPPROTO_UDP, ("udp", "udp6"), UDP_UNCONNECTED))


def bound_of(switch: "Switcher", ns_name: str, want: set[tuple[int, str]]) -> set[tuple[int, str]]:
    """Which (port, "TCP"|"UDP") pairs of `want` listen (TCP) or are bound (UDP) in namespace
    `ns_name`, asked from inside it, only for the protocols wanted: with sock_diag where its
    modules are in the kernel (it walks only the listening table), else from /proc/net (every
    socket of the machine); never making the kernel load a module."""
    try:
        fd = open_ns(ns_name)
    except FileNotFoundError:
        return set()
    found: set[tuple[int, str]] = set()
    try:
        with switch.inside(fd):
            for proto, number, tables, state in _PROTOCOLS:
                if not any(p == proto for _, p in want):
                    continue
                if _diag_present(proto):
                    found |= {(port, proto) for port in listening_ports(number)}
                else:
                    for table in tables:
                        found |= {(port, proto) for port in bound_ports("/proc/thread-self/net", table, state)}
    finally:
        os.close(fd)
    return {(port, proto) for port, proto in want if (port, proto) in found}


POLL_FIRST, POLL_MOST = 0.002, 0.05   # seconds between checks of wait_bound: the first pause, the longest


def wait_bound(wanted: dict[str, set[tuple[int, str]]], limit: float) -> dict[str, set[tuple[int, str]]]:
    """Wait up to `limit` seconds until each namespace of `wanted` has its (port, "TCP"|"UDP") pairs
    bound (bound_of); returns what is still missing ({}: nothing). Asked often at first (a daemon
    just started binds within milliseconds), less often the longer it takes."""
    missing = {ns_name: set(want) for ns_name, want in wanted.items() if want}
    deadline = time.monotonic() + limit
    pause = POLL_FIRST
    switch = Switcher()
    try:
        while missing:
            for ns_name in list(missing):
                missing[ns_name] -= bound_of(switch, ns_name, missing[ns_name])
                if not missing[ns_name]:
                    del missing[ns_name]
            if not missing or time.monotonic() >= deadline:
                break
            time.sleep(pause)
            pause = min(pause * 2, POLL_MOST)
    finally:
        switch.close()
    return missing


@functools.lru_cache(maxsize=4)
def _diag_present(proto: str) -> bool:
    """Read once per process: readiness asks it for every pod."""
    from . import kernelmods   # lazily: only for the readiness of declared ports
    usable = (kernelmods.ModuleState.LOADED, kernelmods.ModuleState.BUILTIN, kernelmods.ModuleState.UNKNOWN)
    return all(kernelmods.module_state(name) in usable for name in ("inet_diag", f"{proto.lower()}_diag"))

