"""The policy's drop log: NFLOG messages from the node namespaces, read with a netlink socket.

Every `drop` that ends a pod's policy chain also logs the packet to NFLOG group 100 (as
kube-router's policy chains do before their DROP; core/policy/nft.py). With no listener
bound to the group the kernel drops the message at once; while `netlab probe` runs, one
socket per node namespace (made inside it: a socket keeps its namespace) is bound to the
group and receives the first bytes of every packet a policy dropped. That is the kernel's
own word that an attempt was denied, per packet: source and destination address and port.

The protocol is nfnetlink_log's (linux/netfilter/nfnetlink_log.h), packed here with struct
as kernel/rtnl.py packs rtnetlink: a config message binds the group and asks for 64 bytes
of each packet, flushed every 10 ms.
"""
from __future__ import annotations

import errno
import os
import socket
import struct
from dataclasses import dataclass

from . import netns

GROUP = 100                      # kube-router's NFLOG group for policy drops
NETLINK_NETFILTER = 12
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET, NFULNL_MSG_CONFIG = 0, 1
NFULA_CFG_CMD, NFULA_CFG_MODE, NFULA_CFG_NLBUFSIZ, NFULA_CFG_TIMEOUT = 1, 2, 3, 4
NFULNL_CFG_CMD_BIND = 1
NFULNL_COPY_PACKET = 2
NFULA_PREFIX, NFULA_PAYLOAD = 10, 9
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR, NLMSG_DONE = 2, 3
COPY_BYTES = 64                  # an IPv4 header with options and the ports
FLUSH_CENTISECONDS = 1
RCVBUF = 4 << 20
NLA_TYPE_MASK = 0x3FFF


@dataclass(frozen=True)
class Drop:
    """One packet a policy dropped: its 5-tuple and the rule's log prefix."""

    protocol: int
    src: str        # dotted quad, as socket.getsockname() gives it
    sport: int
    dst: str
    dport: int
    prefix: str


class DropLog:
    """NFLOG group GROUP of some node namespaces; `listening` lists where the bind succeeded."""

    def __init__(self, node_netns: list[str]) -> None:
        self.socks: dict[int, socket.socket] = {}
        self.listening: list[str] = []
        self.refused: dict[str, str] = {}
        switch = netns.Switcher()
        try:
            for name in node_netns:
                try:
                    sock = _bound_socket(switch, name)
                except OSError as err:
                    # EBUSY: another listener (a second `netlab probe`) holds the group here
                    self.refused[name] = os.strerror(err.errno) if err.errno else str(err)
                    continue
                self.socks[sock.fileno()] = sock
                self.listening.append(name)
        finally:
            switch.close()

    def close(self) -> None:
        for sock in self.socks.values():
            sock.close()
        self.socks.clear()

    def read(self, sock: socket.socket) -> list[Drop]:
        """Every drop queued on `sock` (non-blocking)."""
        drops: list[Drop] = []
        while True:
            try:
                data = sock.recv(1 << 16)
            except BlockingIOError:
                return drops
            except OSError as err:
                if err.errno == errno.ENOBUFS:   # the socket overflowed: drops were lost, not made up
                    continue
                raise
            drops += parse(data)


def _bound_socket(switch: netns.Switcher, name: str) -> socket.socket:
    fd = netns.open_ns(name)
    try:
        with switch.inside(fd):
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER)
    finally:
        os.close(fd)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
        sock.bind((0, 0))
        _config(sock, 1, struct.pack("B3x", NFULNL_CFG_CMD_BIND), NFULA_CFG_CMD)
        _config(sock, 2, struct.pack(">IBx2x", COPY_BYTES, NFULNL_COPY_PACKET), NFULA_CFG_MODE)
        _config(sock, 3, struct.pack(">I", FLUSH_CENTISECONDS), NFULA_CFG_TIMEOUT)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _config(sock: socket.socket, seq: int, payload: bytes, attr: int) -> None:
    """One NFULNL_MSG_CONFIG for GROUP with one attribute; raises the kernel's errno."""
    body = struct.pack("BBH", socket.AF_UNSPEC, 0, socket.htons(GROUP)) + _attr(attr, payload)
    kind = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG
    sock.send(struct.pack("=IHHII", 16 + len(body), kind, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body)
    reply = sock.recv(4096)
    length, kind, _, _, _ = struct.unpack_from("=IHHII", reply)
    if kind == NLMSG_ERROR:
        (code,) = struct.unpack_from("=i", reply, 16)
        if code:
            raise OSError(-code, f"NFLOG group {GROUP}: {os.strerror(-code)}")


def _attr(kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return struct.pack("=HH", size, kind) + payload + b"\0" * (-size % 4)


def parse(data: bytes) -> list[Drop]:
    """The drops in one recv() of NFLOG netlink messages (others are skipped)."""
    drops: list[Drop] = []
    offset = 0
    while offset + 16 <= len(data):
        length, kind, _, _, _ = struct.unpack_from("=IHHII", data, offset)
        if length < 16:
            break
        if kind == (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET:
            drop = _packet(data[offset + 20:offset + length])
            if drop is not None:
                drops.append(drop)
        offset += (length + 3) & ~3
    return drops


def _packet(attrs: bytes) -> Drop | None:
    payload, prefix = b"", ""
    offset = 0
    while offset + 4 <= len(attrs):
        size, kind = struct.unpack_from("=HH", attrs, offset)
        if size < 4:
            break
        value = attrs[offset + 4:offset + size]
        kind &= NLA_TYPE_MASK
        if kind == NFULA_PAYLOAD:
            payload = value
        elif kind == NFULA_PREFIX:
            prefix = value.rstrip(b"\0").decode(errors="replace")
        offset += (size + 3) & ~3
    if len(payload) < 20 or payload[0] >> 4 != 4:
        return None
    header = (payload[0] & 0x0F) * 4
    protocol = payload[9]
    if len(payload) < header + 4:
        return None
    sport, dport = struct.unpack_from(">HH", payload, header)
    return Drop(protocol, socket.inet_ntoa(payload[12:16]), sport, socket.inet_ntoa(payload[16:20]), dport, prefix)
