"""WireGuard on the nodes: which implementation, the node keys, the device, its peers, `wg show`.

The kernel's device where the kernel has WireGuard; otherwise wireguard-go, a daemon of the
node (netlab.kernel.daemons) whose TUN device appears in the node's namespace. Either way the
device is configured with the same `wg set` commands, run as the node (its /run: the private
key at /run/flannel/wgkey as flannel keeps it, wireguard-go's socket at /run/wireguard/).
Keys are made with `wg genkey`/`wg pubkey`, the private key readable by root only.
"""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from . import daemons, procs
from .kernelmods import ModuleState, module_state
from .rtnl import NetlinkError
from ..core.steps import WgDevice, WgPeer
from ..errors import KernelFeatureMissing, NetlabError

DAEMON = "wireguard-go"
FORCE_ENV = "NETLAB_WIREGUARD"     # "userspace": wireguard-go even where the kernel has WireGuard
DEVICE_WAIT = 10.0                 # seconds for wireguard-go's TUN device to appear


class Implementation(StrEnum):
    KERNEL = "kernel"
    USERSPACE = "wireguard-go"


def choose(probe) -> tuple[Implementation, str | None]:
    """Kernel or userspace, decided before anything is built, never loading a module.

    A kernel whose wireguard module exists but is not loaded gets wireguard-go, and is told so
    with the modprobe to run: netlab loads no module, and the lab works either way.
    `probe(kinds)` is netlab.kernel.apply.probe_link_kinds (a throwaway namespace)."""
    if not shutil.which("wg"):
        raise KernelFeatureMissing("backend 'wireguard' needs `wg` (Debian package wireguard-tools); "
                                   "nothing was created — apt-get install wireguard-tools")
    state = module_state("wireguard")
    forced = os.environ.get(FORCE_ENV) == "userspace"
    if not forced and state is not ModuleState.LOADABLE and not probe(("wireguard",)):
        return Implementation.KERNEL, None
    if forced:
        why = f"{FORCE_ENV}=userspace"
    elif state is ModuleState.LOADABLE:
        why = "the kernel's wireguard module is not loaded (`modprobe wireguard` for the kernel's device)"
    else:
        why = "this kernel has no WireGuard (CONFIG_WIREGUARD)"
    if not shutil.which(DAEMON):
        hint = "modprobe wireguard, or " if state is ModuleState.LOADABLE else ""
        raise KernelFeatureMissing(f"backend 'wireguard': {why}, and wireguard-go (Debian package wireguard-go) "
                                   f"is not installed; nothing was created — {hint}apt-get install wireguard-go")
    if not os.path.exists("/dev/net/tun"):
        raise KernelFeatureMissing(f"backend 'wireguard': {why}, and wireguard-go needs /dev/net/tun "
                                   "(CONFIG_TUN), which is missing; nothing was created")
    return Implementation.USERSPACE, f"{why}: using wireguard-go, one process per node"


def key_dir(root: Path) -> Path:
    return root / "run" / "flannel"


def public_key(root: Path) -> str:
    return (key_dir(root) / "wgkey.pub").read_text().strip()


def _wg(args: list[str], stdin: str | None = None) -> str:
    """`wg` as a pure key tool (genkey, pubkey, genpsk): no namespace, no device."""
    done = subprocess.run(["wg", *args], input=stdin, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise NetlabError(f"`wg {' '.join(args)}` failed: {done.stderr.strip()}")
    return done.stdout.strip()


def _write_secret(path: Path, text: str) -> None:
    """Written whole under a temporary name, then renamed: readers see the old or the new key."""
    tmp = path.with_name(path.name + ".new")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, path)


def new_key(root: Path) -> str:
    """A fresh key pair for the node (rotation, or a first start); returns the public key."""
    d = key_dir(root)
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    private = _wg(["genkey"])
    public = _wg(["pubkey"], stdin=private + "\n")
    _write_secret(d / "wgkey", private)
    (d / "wgkey.pub").write_text(public + "\n")
    return public


def ensure_keys(roots: dict[str, Path], psk: bool) -> None:
    """Every node's key pair (kept when present) and, with psk, one pre-shared key for the lab
    (flannel's PSK is one key for every peer), a copy in each node's own files."""
    for root in roots.values():
        if not (key_dir(root) / "wgkey").exists() or not (key_dir(root) / "wgkey.pub").exists():
            new_key(root)
    if not psk:
        return
    have = [key_dir(r) / "wgpsk" for r in roots.values() if (key_dir(r) / "wgpsk").exists()]
    shared = have[0].read_text().strip() if have else _wg(["genpsk"])
    for root in roots.values():
        path = key_dir(root) / "wgpsk"
        if not path.exists() or path.read_text().strip() != shared:
            _write_secret(path, shared)


@dataclass
class Nodes:
    """What the WireGuard steps need to know about the lab's nodes while a run applies them."""

    lab: str
    implementation: Implementation
    roots: dict[str, Path]                 # node -> its files (netlab.kernel.nodefs)
    netns: dict[str, str]                  # node -> its namespace
    logs: Path
    by_netns: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.by_netns = {ns: node for node, ns in self.netns.items()}

    def wg(self, node: str, args: list[str]) -> str:
        done = daemons.run(self.netns[node], self.roots[node], node, ["wg", *args])
        if done.returncode != 0:
            raise NetlabError(f"node {node}: `wg {' '.join(args)}` failed: {done.stderr.strip()}")
        return done.stdout

    def create_device(self, handle, step: WgDevice) -> None:
        """The device in the node's namespace (`handle`: netlab.kernel.apply.Handle), keyed and listening."""
        node = self.by_netns[handle.name]
        if self.implementation is Implementation.KERNEL:
            handle.ipr.link("add", ifname=step.name, kind="wireguard", mtu=step.mtu)
        else:
            rec = daemons.spawn(self.lab, node, handle.name, self.roots[node], DAEMON, [DAEMON, "-f", step.name],
                          self.logs / f"node.{node}.{DAEMON}.log")
            index = self._wait_for_link(handle, step.name, node, rec)
            handle.ipr.link("set", index=index, mtu=step.mtu)
        handle.ifindex.pop(step.name, None)
        self.wg(node, ["set", step.name, "listen-port", str(step.port), "private-key", step.key_file])

    def _wait_for_link(self, handle, name: str, node: str, rec) -> int:
        deadline = time.monotonic() + DEVICE_WAIT
        while True:
            try:
                return handle.nl.link(name=name).index
            except NetlinkError as err:
                if err.code != errno.ENODEV:   # ENODEV until wireguard-go has made it
                    raise
            if not procs.alive(rec) or procs.is_zombie(rec.pid):
                try:   # the log goes with a rolled-back lab: say what it said
                    said = Path(rec.log).read_text(errors="replace").strip().splitlines()[-3:]
                except OSError:
                    said = []
                raise NetlabError(f"node {node}: wireguard-go exited before making {name}: "
                                  + (" | ".join(said) or "no output"))
            if time.monotonic() > deadline:
                raise NetlabError(f"node {node}: wireguard-go made no {name} within {DEVICE_WAIT:.0f} s")
            time.sleep(0.02)

    def peer_args(self, step: WgPeer) -> list[str]:
        args = ["peer", public_key(self.roots[step.node]), "allowed-ips", str(step.allowed_ips),
                "endpoint", f"{step.endpoint}:{step.port}"]
        if step.keepalive:
            args += ["persistent-keepalive", str(step.keepalive)]
        if step.psk_file:
            args += ["preshared-key", step.psk_file]
        return args

    def set_peer(self, handle, step: WgPeer) -> None:
        self.wg(self.by_netns[handle.name], ["set", step.dev, *self.peer_args(step)])

    def converge_peers(self, node: str, dev: str, peers: list[WgPeer]) -> None:
        """The node's peers become exactly `peers`: stale ones removed, the rest set, in one `wg set`."""
        wanted = {public_key(self.roots[p.node]) for p in peers}
        args = ["set", dev]
        for stale in (p.public_key for p in dump(self.wg(node, ["show", dev, "dump"])).peers):
            if stale not in wanted:
                args += ["peer", stale, "remove"]
        for step in peers:
            args += self.peer_args(step)
        if len(args) > 2:
            self.wg(node, args)


@dataclass(frozen=True)
class PeerState:
    """One peer as `wg show DEV dump` gives it: its key, endpoint, AllowedIPs, last handshake, bytes
    received and sent, whether it has a preshared key, and its keepalive."""

    public_key: str
    endpoint: str
    allowed_ips: str
    latest_handshake: int        # unix seconds, 0 = never
    rx_bytes: int
    tx_bytes: int
    preshared: bool = False
    keepalive: int = 0           # seconds, 0 = off


@dataclass(frozen=True)
class DeviceState:
    """A WireGuard device as `wg show DEV dump` gives it: its public key, listen port and peers."""

    public_key: str
    listen_port: int
    peers: tuple[PeerState, ...]


def dump(text: str) -> DeviceState:
    """`wg show DEV dump`: the device line, then one tab-separated line per peer."""
    lines = [line.split("\t") for line in text.splitlines() if line.strip()]
    if not lines:
        raise NetlabError("`wg show dump` printed nothing")
    head = lines[0]
    peers = tuple(PeerState(f[0], f[2], f[3], int(f[4]), int(f[5]), int(f[6]), f[1] != "(none)",
                            0 if f[7] == "off" else int(f[7])) for f in lines[1:] if len(f) >= 8)
    return DeviceState(head[1], int(head[2]), peers)


def has_device(handle, name: str) -> bool:
    """Whether the namespace of `handle` (netlab.kernel.apply.Handle) holds link `name` now."""
    try:
        handle.nl.link(name=name)
    except NetlinkError as err:
        if err.code != errno.ENODEV:
            raise
        handle.ifindex.pop(name, None)
        return False
    return True


def implementation_of(lab: str, node: str, netns_name: str) -> tuple[Implementation, int | None]:
    """Which implementation carries the node's device now: a live wireguard-go of the node, or the kernel."""
    found = daemons.running(lab, node, netns_name, DAEMON)
    return (Implementation.USERSPACE, found[0].pid) if found else (Implementation.KERNEL, None)
