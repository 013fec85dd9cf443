"""Give learned neighbour (ARP) entries back to the kernel, in the namespace the thread is in.

The kernel keeps one neighbour table for all namespaces of the machine, capped at the host's
net.ipv4.neigh.default.gc_thresh3 (1024 by default) dynamic entries, and a REACHABLE entry
cannot be reclaimed for 15-45 s. `netlab probe` resolves pod-to-pod neighbours by the
thousand; once a group of pairs is done it deletes the entries it made them learn, as
`ip neigh del` would (a cache: the kernel resolves again on next use). Permanent and NOARP
entries (netlab's own flannel entries, anything an operator added) are never touched.
"""
from __future__ import annotations

import socket
import struct
from ipaddress import IPv4Address

NETLINK_ROUTE = 0
RTM_DELNEIGH, RTM_GETNEIGH, RTM_NEWNEIGH = 29, 30, 28
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NDA_DST = 1
NUD_NOARP, NUD_PERMANENT = 0x40, 0x80
_HDR = struct.Struct("=IHHII")
_NDMSG = struct.Struct("=BxxxiHBB")       # family, pad, ifindex, state, flags, type


def forget(peers: set[IPv4Address]) -> int:
    """Delete the dynamic IPv4 neighbour entries for `peers` here; how many were asked to go."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
    try:
        sock.bind((0, 0))
        dump = _NDMSG.pack(socket.AF_INET, 0, 0, 0, 0)
        sock.send(_HDR.pack(_HDR.size + len(dump), RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + dump)
        doomed = [(index, ip) for index, ip, state in _read_dump(sock)
                  if ip in peers and not state & (NUD_PERMANENT | NUD_NOARP)]
        batch = b"".join(_delete(index, ip, seq) for seq, (index, ip) in enumerate(doomed, 2))
        if batch:
            sock.send(batch)   # no ack asked: an entry already gone is as good as deleted
        return len(doomed)
    finally:
        sock.close()


def _delete(index: int, ip: IPv4Address, seq: int) -> bytes:
    body = _NDMSG.pack(socket.AF_INET, index, 0, 0, 0) + struct.pack("=HH", 8, NDA_DST) + ip.packed
    return _HDR.pack(_HDR.size + len(body), RTM_DELNEIGH, NLM_F_REQUEST, seq, 0) + body


def _read_dump(sock: socket.socket) -> list[tuple[int, IPv4Address, int]]:
    entries: list[tuple[int, IPv4Address, int]] = []
    while True:
        data = sock.recv(1 << 16)
        offset = 0
        while offset + _HDR.size <= len(data):
            length, kind, _, _, _ = _HDR.unpack_from(data, offset)
            if kind in (NLMSG_DONE, NLMSG_ERROR) or length < _HDR.size:
                return entries
            if kind == RTM_NEWNEIGH:
                family, index, state, _, _ = _NDMSG.unpack_from(data, offset + _HDR.size)
                attr = offset + _HDR.size + _NDMSG.size
                while family == socket.AF_INET and attr + 4 <= offset + length:
                    size, atype = struct.unpack_from("=HH", data, attr)
                    if size < 4:
                        break
                    if atype & 0x3FFF == NDA_DST and size == 8:
                        entries.append((index, IPv4Address(data[attr + 4:attr + 8]), state))
                    attr += (size + 3) & ~3
            offset += (length + 3) & ~3
