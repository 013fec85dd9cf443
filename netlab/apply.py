"""The one module that talks netlink: turns plan steps into kernel objects.

Each namespace is entered in-process and keeps one netlink socket, opened while the
thread was inside it (a socket stays bound to the namespace it was made in). Interface
indexes are remembered as objects are made, so no table is dumped to find one object.
"""
from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass, field

from pyroute2 import IPRoute
from pyroute2.netlink import NETLINK_ROUTE
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.ndmsg import states as NUD

from . import netns
from .errors import NetlabError
from .steps import Addr, Bridge, Fdb, Neigh, Note, Route, Step, Sysctl, Up, Veth, Vxlan

RTNH_F_ONLINK = 4
BRIDGE_MODE_HAIRPIN = 1


class ApplyError(NetlabError):
    def __init__(self, netns_name: str, step: Step | str, err: Exception):
        what = step if isinstance(step, str) else step.describe()
        super().__init__(f"in namespace {netns_name}: `{what}` failed: {err}")
        self.netns_name, self.step, self.cause = netns_name, step, err


@dataclass
class Handle:
    """An open namespace: its fd, its netlink socket, and the ifindexes learned so far."""

    name: str
    fd: int
    ipr: IPRoute
    ifindex: dict[str, int] = field(default_factory=dict)

    def index(self, ifname: str) -> int:
        idx = self.ifindex.get(ifname)
        if idx is None:
            found = self.ipr.link("get", ifname=ifname)
            idx = self.ifindex[ifname] = found[0]["index"]
        return idx


class Kernel:
    """Open namespaces of one run; close() releases every fd and socket."""

    def __init__(self) -> None:
        self.switch = netns.Switcher()
        self.handles: dict[str, Handle] = {}

    def close(self) -> None:
        for handle in self.handles.values():
            handle.ipr.close()
            os.close(handle.fd)
        self.handles.clear()
        self.switch.close()

    def __enter__(self) -> "Kernel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _socket_inside(self) -> IPRoute:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        return IPRoute(use_socket=sock)

    # -- namespaces --------------------------------------------------------------
    def create(self, name: str, mark: str) -> Handle:
        """A new namespace, marked before it gets its name, so no named one is ever unmarked."""
        with self.switch.fresh() as fd:
            ipr = self._socket_inside()
            handle = Handle(name, fd, ipr, {"lo": 1})
            try:
                ipr.link("set", index=1, ifalias=mark)
                self.switch.publish(fd, name)
            except (OSError, NetlinkError) as err:
                ipr.close()
                os.close(fd)
                if isinstance(err, FileExistsError):
                    raise ApplyError(name, f"ip netns add {name}", OSError(
                        errno.EEXIST, f"/run/netns/{name} already exists and is not this lab's")) from err
                raise ApplyError(name, f"ip netns add {name}", err) from err
        self.handles[name] = handle
        return handle

    def attach(self, name: str) -> Handle:
        """Open an existing namespace (FileNotFoundError when it is not there)."""
        if name in self.handles:
            return self.handles[name]
        fd = netns.open_ns(name)
        with self.switch.inside(fd):
            ipr = self._socket_inside()
        handle = self.handles[name] = Handle(name, fd, ipr, {"lo": 1})
        return handle

    def release(self, name: str) -> None:
        handle = self.handles.pop(name, None)
        if handle:
            handle.ipr.close()
            os.close(handle.fd)

    def read_mark(self, name: str) -> str | None:
        """The ownership mark (lo's alias) of a named namespace; None when absent or unreadable."""
        try:
            handle = self.attach(name)
        except (OSError, NetlinkError):
            return None
        try:
            link = handle.ipr.link("get", index=1)[0]
        except NetlinkError:
            return None
        return link.get("ifalias")

    # -- steps ----------------------------------------------------------------------
    def apply(self, name: str, steps: tuple[Step, ...] | list[Step]) -> None:
        handle = self.handles[name]
        for step in steps:
            try:
                self._apply(handle, step)
            except (NetlinkError, OSError, KeyError, IndexError) as err:
                raise ApplyError(name, step, err) from err

    def _apply(self, h: Handle, step: Step) -> None:
        ipr = h.ipr
        if isinstance(step, Up):
            ipr.link("set", index=h.index(step.dev), state="up")
        elif isinstance(step, Addr):
            ipr.addr("add", index=h.index(step.dev), address=str(step.address.ip),
                     prefixlen=step.address.network.prefixlen)
        elif isinstance(step, Route):
            spec: dict = {"dst": str(step.dst), "oif": h.index(step.dev)}
            if step.via is not None:
                spec["gateway"] = str(step.via)
            if step.onlink:
                spec["flags"] = RTNH_F_ONLINK
            ipr.route("add", **spec)
        elif isinstance(step, Bridge):
            ipr.link("add", ifname=step.name, kind="bridge", mtu=step.mtu)
        elif isinstance(step, Veth):
            self._veth(h, step)
        elif isinstance(step, Vxlan):
            ipr.link("add", ifname=step.name, kind="vxlan", vxlan_id=step.vni, vxlan_port=step.port,
                     vxlan_local=str(step.local), vxlan_link=h.index(step.dev), vxlan_learning=0,
                     address=step.mac, mtu=step.mtu)
        elif isinstance(step, Neigh):
            ipr.neigh("add", dst=str(step.ip), lladdr=step.mac, ifindex=h.index(step.dev),
                      state=NUD["permanent"])
        elif isinstance(step, Fdb):
            ipr.fdb("add", ifindex=h.index(step.dev), lladdr=step.mac, dst=str(step.dst),
                    state=NUD["permanent"])
        elif isinstance(step, Sysctl):
            with self.switch.inside(h.fd):
                netns.write_sysctl(step.key, step.value)
        elif isinstance(step, Note):
            pass
        else:
            raise TypeError(f"no applier for {step!r}")

    def _veth(self, h: Handle, step: Veth) -> None:
        peer_handle = self.attach(step.peer_netns)
        h.ipr.link("add", ifname=step.name, kind="veth", mtu=step.mtu,
                   peer={"ifname": step.peer, "net_ns_fd": peer_handle.fd, "mtu": step.mtu})
        peer_index = peer_handle.index(step.peer)
        if step.peer_master:
            peer_handle.ipr.link("set", index=peer_index, master=peer_handle.index(step.peer_master),
                                 state="up")
        else:
            peer_handle.ipr.link("set", index=peer_index, state="up")
        if step.hairpin:
            peer_handle.ipr.brport("set", index=peer_index, mode=BRIDGE_MODE_HAIRPIN)


def probe_link_kinds(kinds: tuple[str, ...]) -> list[str]:
    """The link kinds this kernel cannot create, tried in a throwaway unnamed namespace."""
    missing: list[str] = []
    switch = netns.Switcher()
    try:
        with switch.fresh() as fd:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
            with IPRoute(use_socket=sock) as ipr:
                for n, kind in enumerate(kinds):
                    spec = _probe_spec(kind, ipr)
                    try:
                        ipr.link("add", ifname=f"probe{n}", **spec)
                    except NetlinkError as err:
                        if err.code in (errno.EOPNOTSUPP, errno.ENOENT, errno.EINVAL, errno.ENODEV):
                            missing.append(kind)
                        else:
                            raise
            os.close(fd)
    finally:
        switch.close()
    return missing


def _probe_spec(kind: str, ipr: IPRoute) -> dict:
    if kind == "veth":
        return {"kind": "veth", "peer": "probepeer"}
    if kind == "vxlan":
        return {"kind": "vxlan", "vxlan_id": 42}
    if kind in ("macvlan", "ipvlan"):
        if not ipr.link_lookup(ifname="probeparent"):
            ipr.link("add", ifname="probeparent", kind="veth", peer="probeparent1")
        return {"kind": kind, "link": ipr.link_lookup(ifname="probeparent")[0]}
    return {"kind": kind}

