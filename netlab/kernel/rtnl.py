"""A lean, synchronous rtnetlink socket and the requests netlab's plan steps need.

Part of the netlink layer (netlab.apply is its only user). pyroute2's IPRoute runs each
request through an asyncio loop and a generic attribute encoder: ~0.3 ms a request, and a
1,000-pod lab sends ~8,000. These builders pack the same messages IPRoute sends (the unit
tests decode them with pyroute2's own message classes) with struct, and RtnlSocket writes
several in one sendmsg and reads their acknowledgements in order.

A new link's index is learned by sending, in the same write, a GET for its name after the
create (`create_and_get`): the kernel answers the GET on every version. The NLM_F_ECHO of
RTM_NEWLINK is not used: kernels before 6.3 ignore it for links (Debian 12's 6.1 sends
nothing back), so code that waits for the echo works only by luck there.

A socket stays bound to the network namespace it was opened in: open it inside.
"""
from __future__ import annotations

import errno
import os
import socket
import struct
from dataclasses import dataclass
from ipaddress import IPv4Address


NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10        # errors quote only the request's header, not the whole request
NETLINK_EXT_ACK = 11        # errors carry the kernel's text (e.g. "Unknown device type")

NLM_F_REQUEST, NLM_F_ACK, NLM_F_ECHO = 0x1, 0x4, 0x8
NLM_F_EXCL, NLM_F_CREATE = 0x200, 0x400
NLM_F_ACK_TLVS = 0x200      # on an error message: extended-ack attributes follow
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLMSGERR_ATTR_MSG = 1

RTM_NEWLINK, RTM_GETLINK = 16, 18
RTM_NEWADDR, RTM_NEWROUTE, RTM_NEWNEIGH = 20, 24, 28
ADD = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
SET = NLM_F_REQUEST | NLM_F_ACK

AF_INET, AF_BRIDGE = 2, 7
IFF_UP = 0x1
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER = 1, 3, 4, 5, 10
IFLA_LINKINFO, IFLA_IFALIAS, IFLA_EXT_MASK, IFLA_NET_NS_FD = 18, 20, 29, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_KIND, IFLA_INFO_SLAVE_DATA = 1, 2, 4, 5
VETH_INFO_PEER = 1
IFLA_VXLAN_ID, IFLA_VXLAN_LINK, IFLA_VXLAN_LOCAL, IFLA_VXLAN_LEARNING, IFLA_VXLAN_PORT = 1, 3, 4, 7, 15
IFLA_BRPORT_MODE = 4
RTEXT_FILTER_SKIP_STATS = 1 << 3
IFA_ADDRESS, IFA_LOCAL = 1, 2
RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE, RTN_UNICAST, RTNH_F_ONLINK = 254, 4, 0, 1, 4
RT_SCOPE_LINK = 253
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
NDA_DST, NDA_LLADDR = 1, 2
NUD_NOARP, NUD_PERMANENT, NTF_SELF = 0x40, 0x80, 0x02

_HDR = struct.Struct("=IHHII")           # nlmsghdr: len, type, flags, seq, pid
_IFINFO = struct.Struct("=BxHiII")        # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")         # ifaddrmsg: family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")      # rtmsg: family, dst_len, src_len, tos, table, proto, scope, type, flags
_NDMSG = struct.Struct("=BxxxiHBB")       # ndmsg: family, ifindex, state, flags, type
_NLA = struct.Struct("=HH")


@dataclass(frozen=True)
class Request:
    """One rtnetlink message without its header (the socket adds length, sequence and pid)."""

    type: int
    flags: int
    body: bytes


def encode(req: Request, seq: int) -> bytes:
    """The message as sent: header (pid 0: the kernel fills in the port) and body."""
    return _HDR.pack(_HDR.size + len(req.body), req.type, req.flags, seq, 0) + req.body


# -- attributes ---------------------------------------------------------------------------------
def nla(kind: int, payload: bytes) -> bytes:
    size = _NLA.size + len(payload)
    return _NLA.pack(size, kind) + payload + b"\0" * (-size % 4)


def nla_str(kind: int, text: str) -> bytes:
    return nla(kind, text.encode() + b"\0")


def nla_u32(kind: int, value: int) -> bytes:
    return nla(kind, struct.pack("=I", value))


def nla_u8(kind: int, value: int) -> bytes:
    return nla(kind, struct.pack("=B", value))


def nla_be16(kind: int, value: int) -> bytes:
    return nla(kind, struct.pack("!H", value))


def nla_ip4(kind: int, address: IPv4Address | str) -> bytes:
    return nla(kind, IPv4Address(address).packed)


def nla_mac(kind: int, mac: str) -> bytes:
    return nla(kind, bytes.fromhex(mac.replace(":", "")))


def parse_attrs(data: bytes | memoryview, offset: int, end: int) -> dict[int, memoryview]:
    """Top-level attributes of a message body (the last of a kind wins; NLA_F flags dropped)."""
    view = memoryview(data)
    attrs: dict[int, memoryview] = {}
    while offset + _NLA.size <= end:
        size, kind = _NLA.unpack_from(view, offset)
        if size < _NLA.size:
            break
        attrs[kind & 0x3FFF] = view[offset + _NLA.size:offset + size]
        offset += (size + 3) & ~3
    return attrs


def _cstr(value: memoryview | None) -> str | None:
    if value is None:
        return None
    return bytes(value).split(b"\0", 1)[0].decode(errors="replace")


# -- links --------------------------------------------------------------------------------------
def ifinfo(index: int = 0, up: bool | None = None, family: int = 0) -> bytes:
    flags = IFF_UP if up else 0
    change = IFF_UP if up is not None else 0
    return _IFINFO.pack(family, 0, index, flags, change)


def set_link(index: int, *, up: bool | None = None, master: int | None = None,
             alias: str | None = None, name: str | None = None) -> Request:
    """`ip link set`: by index; any of up, master, alias, a new name (the link must be down)."""
    attrs = nla_str(IFLA_IFNAME, name) if name is not None else b""
    if master is not None:
        attrs += nla_u32(IFLA_MASTER, master)
    if alias is not None:
        attrs += nla_str(IFLA_IFALIAS, alias)
    return Request(RTM_NEWLINK, SET, ifinfo(index, up) + attrs)


def new_bridge(name: str, mtu: int) -> Request:
    return Request(RTM_NEWLINK, ADD, ifinfo() + nla_str(IFLA_IFNAME, name) + nla_u32(IFLA_MTU, mtu)
                   + nla(IFLA_LINKINFO, nla_str(IFLA_INFO_KIND, "bridge")))


def new_veth(name: str, mtu: int, peer: str, peer_mtu: int, peer_netns_fd: int) -> Request:
    """A veth pair: `name` here, `peer` made straight into the namespace of `peer_netns_fd`."""
    peer_msg = ifinfo() + nla_str(IFLA_IFNAME, peer) + nla_u32(IFLA_NET_NS_FD, peer_netns_fd) \
        + nla_u32(IFLA_MTU, peer_mtu)
    info = nla_str(IFLA_INFO_KIND, "veth") + nla(IFLA_INFO_DATA, nla(VETH_INFO_PEER, peer_msg))
    return Request(RTM_NEWLINK, ADD,
                   ifinfo() + nla_str(IFLA_IFNAME, name) + nla_u32(IFLA_MTU, mtu) + nla(IFLA_LINKINFO, info))


def new_vxlan(name: str, mac: str, mtu: int, vni: int, port: int, local: IPv4Address, link: int) -> Request:
    """flannel's VTEP: no learning, a fixed MAC, the uplink as underlying device."""
    data = (nla_u32(IFLA_VXLAN_ID, vni) + nla_be16(IFLA_VXLAN_PORT, port) + nla_ip4(IFLA_VXLAN_LOCAL, local)
            + nla_u32(IFLA_VXLAN_LINK, link) + nla_u8(IFLA_VXLAN_LEARNING, 0))
    info = nla_str(IFLA_INFO_KIND, "vxlan") + nla(IFLA_INFO_DATA, data)
    return Request(RTM_NEWLINK, ADD,
                   ifinfo() + nla_str(IFLA_IFNAME, name) + nla_mac(IFLA_ADDRESS, mac) + nla_u32(IFLA_MTU, mtu)
                   + nla(IFLA_LINKINFO, info))


def new_link(name: str, kind: str, link: int | None = None) -> Request:
    """A link of `kind` with no options (feature probes), optionally on parent `link`."""
    attrs = nla_str(IFLA_IFNAME, name) + (nla_u32(IFLA_LINK, link) if link is not None else b"")
    return Request(RTM_NEWLINK, ADD, ifinfo() + attrs + nla(IFLA_LINKINFO, nla_str(IFLA_INFO_KIND, kind)))


def bridge_port_mode(index: int, mode: int) -> Request:
    """`bridge link set dev X hairpin on` (mode 1), as bridge_slave data on the port."""
    info = nla_str(IFLA_INFO_SLAVE_KIND, "bridge_slave") + nla(IFLA_INFO_SLAVE_DATA, nla_u8(IFLA_BRPORT_MODE, mode))
    return Request(RTM_NEWLINK, SET, ifinfo(index) + nla(IFLA_LINKINFO, info))


def get_link(index: int = 0, name: str | None = None) -> Request:
    attrs = nla_u32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)
    if name is not None:
        attrs = nla_str(IFLA_IFNAME, name) + attrs
    return Request(RTM_GETLINK, SET, ifinfo(index) + attrs)


@dataclass(frozen=True)
class Link:
    """A link as an RTM_NEWLINK message gives it: its ifindex, name, alias (netlab's mark, on lo) and
    IFLA_LINK."""

    index: int
    name: str | None
    alias: str | None
    link: int | None = None    # IFLA_LINK: a veth's peer, a vxlan's underlying device


def parse_link(msg: bytes | memoryview) -> Link:
    """A link message (RTM_NEWLINK reply or echo), header included."""
    index = _IFINFO.unpack_from(msg, _HDR.size)[2]
    length = _HDR.unpack_from(msg, 0)[0]
    attrs = parse_attrs(msg, _HDR.size + _IFINFO.size, length)
    link = attrs.get(IFLA_LINK)
    return Link(index, _cstr(attrs.get(IFLA_IFNAME)), _cstr(attrs.get(IFLA_IFALIAS)),
                struct.unpack("=i", link)[0] if link is not None and len(link) == 4 else None)


# -- addresses, routes, neighbours ---------------------------------------------------------------
def new_addr(index: int, address: IPv4Address | str, prefixlen: int) -> Request:
    return Request(RTM_NEWADDR, ADD, _IFADDR.pack(AF_INET, prefixlen, 0, 0, index)
                   + nla_ip4(IFA_ADDRESS, address) + nla_ip4(IFA_LOCAL, address))


def new_route(dst: IPv4Address | str, dst_len: int, oif: int, gateway: IPv4Address | str | None = None,
              onlink: bool = False, scope: int = RT_SCOPE_UNIVERSE) -> Request:
    head = _RTMSG.pack(AF_INET, dst_len, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, scope, RTN_UNICAST,
                       RTNH_F_ONLINK if onlink else 0)
    attrs = nla_ip4(RTA_DST, dst) if dst_len else b""
    attrs += nla_u32(RTA_OIF, oif)
    if gateway is not None:
        attrs += nla_ip4(RTA_GATEWAY, gateway)
    return Request(RTM_NEWROUTE, ADD, head + attrs)


def new_neigh(ifindex: int, ip: IPv4Address | str, mac: str) -> Request:
    """`ip neigh add IP lladdr MAC dev X nud permanent`."""
    return Request(RTM_NEWNEIGH, ADD, _NDMSG.pack(AF_INET, ifindex, NUD_PERMANENT, 0, 0)
                   + nla_ip4(NDA_DST, ip) + nla_mac(NDA_LLADDR, mac))


def new_fdb(ifindex: int, mac: str, dst: IPv4Address | str) -> Request:
    """`bridge fdb add MAC dev X dst IP self permanent`."""
    return Request(RTM_NEWNEIGH, ADD, _NDMSG.pack(AF_BRIDGE, ifindex, NUD_PERMANENT | NUD_NOARP, NTF_SELF, 0)
                   + nla_mac(NDA_LLADDR, mac) + nla_ip4(NDA_DST, dst))


# -- the socket ------------------------------------------------------------------------------------
class NetlinkError(Exception):
    """The kernel refused a request; `code` is its errno. The kernel layer raises this one for
    pyroute2's requests too (apply.Handle.ipr), so that building a lab never imports pyroute2
    (~100 ms) unless a step needs it."""

    def __init__(self, code: int, msg: str | None = None):
        super().__init__(code, msg or os.strerror(code))
        self.code = code


class RequestFailed(NetlinkError):
    """A request the kernel refused; `position` is its place in the batch sent."""

    def __init__(self, code: int, text: str, position: int):
        super().__init__(code, text)
        self.position = position


class RtnlSocket:
    """NETLINK_ROUTE in the namespace the calling thread is in when it is made."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        try:
            self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
            self.sock.bind((0, 0))
        except OSError:
            self.sock.close()
            raise
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def call(self, *requests: Request) -> list[bytes | None]:
        """Send the requests in one write; each one's reply (an echo or a GET answer) or None.

        Every request is acknowledged before this returns, so the socket stays in step;
        the first refusal is raised as RequestFailed with its position.
        """
        first = self.seq + 1
        chunks = []
        for req in requests:
            self.seq += 1
            chunks.append(encode(req, self.seq))
        self.sock.send(b"".join(chunks))
        replies: list[bytes | None] = [None] * len(requests)
        failure: RequestFailed | None = None
        pending = len(requests)
        while pending:
            data = self.sock.recv(1 << 17)
            offset = 0
            while offset + _HDR.size <= len(data):
                length, kind, flags, seq, _ = _HDR.unpack_from(data, offset)
                if length < _HDR.size:
                    break
                position = seq - first
                if 0 <= position < len(requests):
                    if kind == NLMSG_ERROR:
                        code = -struct.unpack_from("=i", data, offset + _HDR.size)[0]
                        pending -= 1
                        if code and failure is None:
                            failure = RequestFailed(code, _error_text(data, offset, length, flags, code), position)
                    elif kind != NLMSG_DONE:
                        replies[position] = data[offset:offset + length]
                offset += (length + 3) & ~3
        if failure is not None:
            raise failure
        return replies

    def create_and_get(self, create: Request, name: str) -> Link:
        """Make a link and read it back by name in the same write: its index, and for a veth its
        peer's index (IFLA_LINK), whatever the kernel version does with NLM_F_ECHO."""
        reply = self.call(create, get_link(name=name))[1]
        if reply is None:
            raise NetlinkError(errno.ENODEV, f"{name}: made, but not found by name just after")
        return parse_link(reply)

    def link(self, index: int = 0, name: str | None = None) -> Link:
        reply = self.call(get_link(index, name))[0]
        if reply is None:
            raise NetlinkError(errno.ENODEV, os.strerror(errno.ENODEV))
        return parse_link(reply)


def _error_text(data: bytes, offset: int, length: int, flags: int, code: int) -> str:
    """strerror, and the kernel's own words when it gave some (extended ack)."""
    text = os.strerror(code)
    if flags & NLM_F_ACK_TLVS:
        # error code, then the quoted request header (capped: NETLINK_CAP_ACK), then attributes
        start = offset + _HDR.size + 4 + _HDR.size
        detail = _cstr(parse_attrs(data, start, offset + length).get(NLMSGERR_ATTR_MSG))
        if detail:
            text += f": {detail}"
    return text
