"""What a namespace holds, read back from the kernel: links, addresses, routes, VXLAN fdb.

Used by `netlab graph` (the picture is drawn from the kernel, not from the plan) and
`netlab capture` (the interfaces a target has). One netlink socket opened inside the
namespace, dumps only; nothing is changed.
"""
from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass, field

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink import NETLINK_ROUTE

from . import netns

AF_BRIDGE = 7


@dataclass(frozen=True)
class LinkView:
    """One link of a namespace as the kernel reports it: kind, MAC, MTU, state, master, addresses and
    the link it is tied to."""

    index: int
    name: str
    kind: str                     # veth, bridge, vxlan, macvlan, ipip, loopback, ...
    mac: str | None
    mtu: int
    up: bool
    master: str | None            # the bridge this link is a port of
    addresses: tuple[str, ...]    # "172.16.0.1/24"
    peer_index: int | None        # IFLA_LINK: a veth's peer or a macvlan's parent ...
    peer_netnsid: int | None      # ... in another namespace when this is set
    vxlan: dict | None = None     # {"vni", "port", "local"}


@dataclass(frozen=True)
class RouteView:
    """One route of the namespace's main table as the kernel reports it."""

    dst: str                      # "172.16.1.0/24" or "default"
    gateway: str | None
    dev: str | None
    onlink: bool


@dataclass(frozen=True)
class FdbView:
    """One fdb entry as the kernel reports it: a MAC on a bridge port, or on a VXLAN device with its
    remote VTEP."""

    dev: str
    mac: str
    dst: str | None               # a VXLAN entry's remote VTEP (underlay address); None on a bridge port


@dataclass(frozen=True)
class NeighView:
    """One neighbour entry as the kernel reports it: an IP and its MAC (None while unresolved)."""

    dev: str
    ip: str
    mac: str | None


@dataclass(frozen=True)
class RouteGet:
    """The kernel's answer to `ip route get` (RTM_GETROUTE) for one flow."""
    local: bool                   # RTN_LOCAL: the address is this namespace's own
    dev: str | None
    gateway: str | None
    prefsrc: str | None


@dataclass(frozen=True)
class NetnsView:
    """What one namespace holds, read back from the kernel: its links, routes, fdb and neighbours."""

    name: str
    links: tuple[LinkView, ...]
    routes: tuple[RouteView, ...]
    fdb: tuple[FdbView, ...] = field(default=())
    neighbours: tuple[NeighView, ...] = field(default=())

    def link(self, name: str) -> LinkView | None:
        return next((link for link in self.links if link.name == name), None)

    def by_index(self, index: int) -> LinkView | None:
        return next((link for link in self.links if link.index == index), None)


def read(name: str) -> NetnsView:
    """Read namespace `name` (FileNotFoundError when it is gone)."""
    return _inside(name, lambda ipr: _read(ipr, name))


def route_get(name: str, dst: str, src: str | None = None, iif: str | None = None) -> RouteGet:
    """RTM_GETROUTE in namespace `name`, as `ip route get DST [from SRC iif DEV]` asks it."""
    def ask(ipr: IPRoute) -> RouteGet:
        query: dict = {"dst": dst}
        if src:
            query["src"] = src
        if iif:
            query["iif"] = ipr.link_lookup(ifname=iif)[0]
        try:
            (msg,) = ipr.route("get", **query)
        except NetlinkError as err:
            if err.code in (errno.ENETUNREACH, errno.EHOSTUNREACH):   # no route (or an unreachable one)
                return RouteGet(False, None, None, None)
            raise
        oif = msg.get_attr("RTA_OIF")
        dev = ipr.get_links(oif)[0].get_attr("IFLA_IFNAME") if oif else None
        return RouteGet(msg["type"] == 2, dev, msg.get_attr("RTA_GATEWAY"), msg.get_attr("RTA_PREFSRC"))
    return _inside(name, ask)


def _inside(name: str, work):
    fd = netns.open_ns(name)
    switch = netns.Switcher()
    try:
        with switch.inside(fd):   # the socket belongs to the namespace it is made in
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        ipr = IPRoute(use_socket=sock)
        try:
            return work(ipr)
        finally:
            ipr.close()
    finally:
        switch.close()
        os.close(fd)


def _read(ipr: IPRoute, name: str) -> NetnsView:
    raw_links = list(ipr.get_links())
    names = {msg["index"]: msg.get_attr("IFLA_IFNAME") for msg in raw_links}
    addresses: dict[int, list[str]] = {}
    for msg in ipr.get_addr(family=socket.AF_INET):
        addresses.setdefault(msg["index"], []).append(f"{msg.get_attr('IFA_ADDRESS')}/{msg['prefixlen']}")
    links = []
    for msg in raw_links:
        info = msg.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info else None
        data = info.get_attr("IFLA_INFO_DATA") if info else None
        vxlan = None
        if kind == "vxlan" and data is not None:
            vxlan = {"vni": data.get_attr("IFLA_VXLAN_ID"), "port": data.get_attr("IFLA_VXLAN_PORT"),
                     "local": data.get_attr("IFLA_VXLAN_LOCAL")}
        master = msg.get_attr("IFLA_MASTER")
        link = msg.get_attr("IFLA_LINK")
        links.append(LinkView(
            index=msg["index"], name=names[msg["index"]],
            kind=kind or ("loopback" if msg["index"] == 1 else "device"),
            mac=msg.get_attr("IFLA_ADDRESS"), mtu=msg.get_attr("IFLA_MTU") or 0,
            up=bool(msg["flags"] & 1), master=names.get(master) if master else None,
            addresses=tuple(addresses.get(msg["index"], ())),
            peer_index=link or None,
            peer_netnsid=msg.get_attr("IFLA_LINK_NETNSID"), vxlan=vxlan))
    routes = []
    for msg in ipr.get_routes(family=socket.AF_INET, table=254):
        dst = msg.get_attr("RTA_DST")
        oif = msg.get_attr("RTA_OIF")
        routes.append(RouteView(dst=f"{dst}/{msg['dst_len']}" if dst else "default",
                                gateway=msg.get_attr("RTA_GATEWAY"), dev=names.get(oif) if oif else None,
                                onlink=bool(msg["flags"] & 4)))
    fdb = [FdbView(names[msg["ifindex"]], msg.get_attr("NDA_LLADDR"), msg.get_attr("NDA_DST"))
           for msg in ipr.get_neighbours(family=AF_BRIDGE) if msg["ifindex"] in names]
    neighbours = [NeighView(names[msg["ifindex"]], msg.get_attr("NDA_DST"), msg.get_attr("NDA_LLADDR"))
                  for msg in ipr.get_neighbours(family=socket.AF_INET) if msg["ifindex"] in names]
    return NetnsView(name, tuple(links), tuple(routes), tuple(fdb), tuple(neighbours))
