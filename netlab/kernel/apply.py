"""The one module that talks netlink: turns plan steps into kernel objects.

Each namespace is entered in-process and keeps one netlink socket, opened while the
thread was inside it (a socket stays bound to the namespace it was made in). Interface
indexes are remembered as objects are made (each create is followed, in the same write,
by a GET of its name: see netlab.rtnl), so no table is dumped to find one object. The frequent requests go through netlab.rtnl, a
lean synchronous socket (pyroute2's IPRoute costs ~0.3 ms a request, and a 1,000-pod
lab sends ~8,000); pyroute2 serves the rest.
"""
from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any

from . import netns, rtnl
from .rtnl import NETLINK_ROUTE, NetlinkError
from ..errors import NetlabError
from ..core.steps import (Addr, Blackhole, Bridge, Fdb, Ipip, Ipvlan, Macvlan, Neigh, Note, Route, Step, Sysctl, Up,
                          Veth, Vxlan, WgDevice, WgPeer)

IPVLAN_MODES = {"l2": 0, "l3": 1}    # IPVLAN_MODE_L2, IPVLAN_MODE_L3
BRIDGE_MODE_HAIRPIN = 1


# limits a big lab can reach, and what to do about each
LIMIT_HINTS = {
    errno.EMFILE: "netlab ran out of file descriptors: raise `ulimit -n` (the hard limit) and retry",
    errno.ENFILE: "the system ran out of file descriptors (fs.file-max)",
    errno.ENOSPC: "a kernel limit is reached: user.max_net_namespaces, or the table or device limits",
    errno.ENOBUFS: "the netlink socket buffer overflowed; retry, or build the lab in parts",
}


class ApplyError(NetlabError):
    def __init__(self, netns_name: str, step: Step | str, err: Exception):
        what = step if isinstance(step, str) else step.describe()
        code = getattr(err, "code", None) or getattr(err, "errno", None)
        hint = f" — {LIMIT_HINTS[code]}" if code in LIMIT_HINTS else ""
        super().__init__(f"in namespace {netns_name}: `{what}` failed: {err}{hint}")
        self.netns_name, self.step, self.cause = netns_name, step, err


class Pyroute:
    """pyroute2's IPRoute for the rarer requests, its errors raised as rtnl.NetlinkError (what
    the rest of the kernel layer catches)."""

    def __init__(self, ipr: Any) -> None:
        self._ipr = ipr

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        from pyroute2.netlink.exceptions import NetlinkError as PyrouteError   # loaded with IPRoute
        try:
            return getattr(self._ipr, method)(*args, **kwargs)
        except PyrouteError as err:
            raise NetlinkError(err.code, str(err.args[1]) if len(err.args) > 1 else None) from err

    def link(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("link", *args, **kwargs)

    def neigh(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("neigh", *args, **kwargs)

    def route(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("route", *args, **kwargs)

    def close(self) -> None:
        self._ipr.close()


@dataclass
class Handle:
    """An open namespace: its fd, its netlink socket, and the ifindexes learned so far.

    `nl` (netlab.rtnl) carries the plan's frequent requests; `ipr`, a pyroute2 IPRoute for
    the rarer ones, is opened inside the namespace on first use.
    """

    name: str
    fd: int
    nl: rtnl.RtnlSocket
    ifindex: dict[str, int] = field(default_factory=dict)
    opener: Callable[[int], "Pyroute"] | None = None
    _ipr: "Pyroute | None" = None

    @property
    def ipr(self) -> "Pyroute":
        if self._ipr is None:
            assert self.opener is not None
            self._ipr = self.opener(self.fd)
        return self._ipr

    def index(self, ifname: str) -> int:
        idx = self.ifindex.get(ifname)
        if idx is None:
            idx = self.ifindex[ifname] = self.nl.link(name=ifname).index
        return idx

    def close(self) -> None:
        self.nl.close()
        if self._ipr is not None:
            self._ipr.close()
        os.close(self.fd)


class Kernel:
    """Open namespaces of one run; close() releases every fd and socket."""

    def __init__(self) -> None:
        self.switch = netns.Switcher()
        self.handles: dict[str, Handle] = {}
        self.wireguard = None   # netlab.kernel.wireguard.Nodes, set by a run that builds WireGuard devices

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()
        self.handles.clear()
        self.switch.close()

    def __enter__(self) -> "Kernel":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _socket_inside(self) -> "Pyroute":
        from pyroute2 import IPRoute   # lazily: ~100 ms of imports, only for the steps rtnl has no encoder for
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        return Pyroute(IPRoute(use_socket=sock))

    def _ipr_inside(self, fd: int) -> "Pyroute":
        with self.switch.inside(fd):
            return self._socket_inside()

    # -- namespaces --------------------------------------------------------------
    def ready_dir(self) -> None:
        """/run/netns ready to take namespaces (a process that opens it before, as the pod launcher
        does, must see the mount namespaces get published on, not the directory under it)."""
        self.switch.ready_dir()

    def create(self, name: str, mark: str) -> Handle:
        """A new namespace, marked before it gets its name, so no named one is ever unmarked."""
        with self.switch.fresh() as fd:
            try:
                nl = rtnl.RtnlSocket()
            except OSError:
                os.close(fd)
                raise
            handle = Handle(name, fd, nl, {"lo": 1}, self._ipr_inside)
            try:
                nl.call(rtnl.set_link(1, alias=mark))
                self.switch.publish(fd, name, stamp=mark)
            except (OSError, NetlinkError) as err:
                handle.close()
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
        try:
            with self.switch.inside(fd):
                nl = rtnl.RtnlSocket()
        except OSError:
            os.close(fd)
            raise
        handle = self.handles[name] = Handle(name, fd, nl, {"lo": 1}, self._ipr_inside)
        return handle

    def dismantle(self, name: str) -> None:
        """Delete a namespace's interfaces now, before it is dropped. The kernel frees a dropped
        namespace later (~20 ms), and meanwhile its veth peers and macvlan/ipvlan children still
        hold names, MACs and IPs in the namespaces that stay: a rebuild would hit EEXIST/EADDRINUSE."""
        handle = self.attach(name)
        for link in handle.ipr.link("dump"):
            if link["index"] == 1:
                continue
            try:
                handle.ipr.link("del", index=link["index"])
            except NetlinkError as err:
                if err.code != errno.ENODEV:   # ENODEV: went with its veth peer, deleted just before
                    raise

    def forget_neighbour(self, name: str, ip: str) -> None:
        """Drop namespace `name`'s learned neighbour entries for `ip`. A pod rebuilt at the same
        address has a new MAC; the node's cached entry would send it frames for the old one until
        it went stale (the CNI bridge plugin's gratuitous ARP does the same job upstream)."""
        handle = self.attach(name)
        for entry in handle.ipr.neigh("dump", family=socket.AF_INET):
            if entry.get_attr("NDA_DST") != ip or entry["state"] & rtnl.NUD_PERMANENT:
                continue
            try:
                handle.ipr.neigh("del", dst=ip, ifindex=entry["ifindex"])
            except NetlinkError as err:
                if err.code != errno.ENOENT:
                    raise

    def release(self, name: str) -> None:
        handle = self.handles.pop(name, None)
        if handle:
            handle.close()

    # -- steps ----------------------------------------------------------------------
    def apply(self, name: str, steps: tuple[Step, ...] | list[Step]) -> None:
        handle = self.handles[name]
        for step in steps:
            try:
                self._apply(handle, step)
            except (NetlinkError, OSError, KeyError, IndexError) as err:
                raise ApplyError(name, step, err) from err

    def _apply(self, h: Handle, step: Step) -> None:
        applier = APPLIERS.get(type(step))
        if applier is None:
            raise TypeError(f"no applier for {step!r}")
        applier(self, h, step)

    def _up(self, h: Handle, step: Up) -> None:
        h.nl.call(rtnl.set_link(h.index(step.dev), up=True))

    def _addr(self, h: Handle, step: Addr) -> None:
        h.nl.call(rtnl.new_addr(h.index(step.dev), step.address.ip, step.address.network.prefixlen))

    def _route(self, h: Handle, step: Route) -> None:
        # no gateway: scope link, as `ip route add DST dev DEV` does
        h.nl.call(rtnl.new_route(step.dst.network_address, step.dst.prefixlen, h.index(step.dev), step.via,
                                 step.onlink, rtnl.RT_SCOPE_UNIVERSE if step.via is not None else rtnl.RT_SCOPE_LINK))

    def _blackhole(self, h: Handle, step: Blackhole) -> None:
        h.ipr.route("add", dst=str(step.dst), type="blackhole", priority=step.metric)

    def _bridge(self, h: Handle, step: Bridge) -> None:
        self._learn(h, h.nl.create_and_get(rtnl.new_bridge(step.name, step.mtu), step.name))

    def _vxlan(self, h: Handle, step: Vxlan) -> None:
        self._learn(h, h.nl.create_and_get(rtnl.new_vxlan(step.name, step.mac, step.mtu, step.vni, step.port,
                                                          step.local, h.index(step.dev)), step.name))

    def _neigh(self, h: Handle, step: Neigh) -> None:
        h.nl.call(rtnl.new_neigh(h.index(step.dev), step.ip, step.mac))

    def _fdb(self, h: Handle, step: Fdb) -> None:
        h.nl.call(rtnl.new_fdb(h.index(step.dev), step.mac, step.dst))

    def _sysctl(self, h: Handle, step: Sysctl) -> None:
        with self.switch.inside(h.fd):
            try:
                netns.write_sysctl(step.key, step.value)
            except FileNotFoundError:
                if not step.optional:
                    raise

    def _note(self, h: Handle, step: Note) -> None:
        pass   # the kernel does it by itself

    def _underlay_child(self, h: Handle, step: Macvlan | Ipvlan) -> None:
        """Made where the parent lives; a pod's is placed in h by the same request (IFLA_NET_NS_FD).

        A pod's child is made under a temporary name, then renamed inside the pod: kernels before
        6.3 (Debian 12's 6.1) check the new name against the *parent's* namespace even when the
        link is created straight into another one, so `eth0` would clash with the node's uplink."""
        maker = self.attach(step.parent_netns) if step.parent_netns else h
        moved = maker is not h
        spec: dict = {"ifname": step.temp_name if moved else step.name, "link": maker.index(step.parent),
                      "mtu": step.mtu}
        if isinstance(step, Macvlan):
            spec.update(kind="macvlan", macvlan_mode=step.mode)
        else:
            spec.update(kind="ipvlan", ipvlan_mode=IPVLAN_MODES[step.mode])
        if moved:
            spec["net_ns_fd"] = h.fd
        maker.ipr.link("add", **spec)
        if moved:
            index = h.nl.link(name=step.temp_name).index
            h.nl.call(rtnl.set_link(index, name=step.name))
            h.ifindex[step.name] = index

    def _tunl(self, h: Handle, step: Ipip) -> None:
        try:
            h.ipr.link("add", ifname=step.name, kind="ipip", mtu=step.mtu)
        except NetlinkError as err:
            if err.code != errno.EEXIST:   # EEXIST: the ipip module's fallback tunl0 is already here
                raise
            h.ipr.link("set", index=h.index(step.name), mtu=step.mtu)

    def _wg_device(self, h: Handle, step: WgDevice) -> None:
        self.wireguard.create_device(h, step)   # kernel link, or wireguard-go's TUN; then `wg set`

    def _wg_peer(self, h: Handle, step: WgPeer) -> None:
        self.wireguard.set_peer(h, step)

    @staticmethod
    def _learn(h: Handle, link: rtnl.Link) -> rtnl.Link:
        """Remember the index of a link just made (read back by name in the same write)."""
        if link.name:
            h.ifindex[link.name] = link.index
        return link

    def _veth(self, h: Handle, step: Veth) -> None:
        peer_handle = self.attach(step.peer_netns)
        link = self._learn(h, h.nl.create_and_get(
            rtnl.new_veth(step.name, step.mtu, step.peer, step.mtu, peer_handle.fd), step.name))
        # a veth names its peer's index (IFLA_LINK), left out only when both are equal
        peer_handle.ifindex[step.peer] = link.link if link.link is not None else link.index
        peer_index = peer_handle.index(step.peer)
        master = peer_handle.index(step.peer_master) if step.peer_master else None
        requests = [rtnl.set_link(peer_index, up=True, master=master)]
        if step.hairpin:
            requests.append(rtnl.bridge_port_mode(peer_index, BRIDGE_MODE_HAIRPIN))
        peer_handle.nl.call(*requests)


# One applier per step kind; the step's describe() (netlab.core.steps) is its iproute2 twin.
# Through netlab.rtnl: Up, Addr, Route, Bridge, Veth, Vxlan, Neigh, Fdb (the frequent ones).
# Through pyroute2's IPRoute (Handle.ipr): Macvlan and Ipvlan (rtnl has no encoder for their
# link info, nor for IFLA_NET_NS_FD on a child of another namespace's link) and Ipip (its
# EEXIST fallback re-sets tunl0's MTU) and Blackhole; they are one per node or pod, so the cost is small.
# Sysctl writes /proc/sys inside the namespace; Note is the kernel's own doing. WgDevice and
# WgPeer go through netlab.kernel.wireguard (`wg` run as the node; wireguard-go where needed).
APPLIERS: dict[type, Callable[[Kernel, Handle, Step], None]] = {
    Up: Kernel._up, Addr: Kernel._addr, Route: Kernel._route, Bridge: Kernel._bridge, Veth: Kernel._veth,
    Vxlan: Kernel._vxlan, Macvlan: Kernel._underlay_child, Ipvlan: Kernel._underlay_child, Ipip: Kernel._tunl,
    Neigh: Kernel._neigh, Fdb: Kernel._fdb, Sysctl: Kernel._sysctl, Note: Kernel._note,
    WgDevice: Kernel._wg_device, WgPeer: Kernel._wg_peer,
    Blackhole: Kernel._blackhole,
}


def probe_link_kinds(kinds: tuple[str, ...], held: list[int] | None = None) -> list[str]:
    """The link kinds this kernel cannot create, tried in a throwaway unnamed namespace: a veth
    first (the parent the VTEP and the underlay children are made on, as on a node's eth0), then
    one link of each other kind.

    `held`: the throwaway namespace's descriptor is added to it instead of closed, for the caller
    to close when its own work is done. The kernel dismantles a dropped namespace in the
    background under its rtnl lock (~25 ms for these links), which would stall a build started
    right after the probe."""
    missing: list[str] = []
    switch = netns.Switcher()
    try:
        with switch.fresh() as fd:
            nl = rtnl.RtnlSocket()
            try:
                parent = None
                for n, kind in enumerate(sorted(kinds, key=lambda k: k != "veth")):
                    try:
                        if kind == "veth" or parent is None:
                            parent = nl.create_and_get(rtnl.new_veth("probe", 1500, "probepeer", 1500, fd),
                                                       "probe").index
                        if kind != "veth":
                            nl.call(_probe_request(f"probe{n}", kind, parent))
                    except NetlinkError as err:
                        if err.code == errno.EEXIST and kind == "ipip":
                            continue   # the fallback tunl0 (any to any) is there already: ipip exists
                        if err.code in (errno.EOPNOTSUPP, errno.ENOENT, errno.EINVAL, errno.ENODEV):
                            missing.append(kind)
                        else:
                            raise
            finally:
                nl.close()
            if held is None:
                os.close(fd)
            else:
                held.append(fd)
    finally:
        switch.close()
    return missing


def _probe_request(name: str, kind: str, parent: int) -> rtnl.Request:
    if kind == "bridge":
        return rtnl.new_bridge(name, 1500)
    if kind == "vxlan":
        return rtnl.new_vxlan(name, "02:00:00:00:00:01", 1450, 42, 8472, IPv4Address("192.0.2.1"), parent)
    if kind in ("macvlan", "ipvlan"):
        return rtnl.new_link(name, kind, parent)
    return rtnl.new_link(name, kind)   # ipip (any to any), wireguard: the bare kind suffices

