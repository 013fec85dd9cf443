"""The NFLOG messages `netlab probe` reads: packed as nfnetlink_log sends them, parsed back."""
from __future__ import annotations

import socket
import struct

from netlab.kernel import droplog


def _attr(kind: int, payload: bytes) -> bytes:
    size = 4 + len(payload)
    return struct.pack("=HH", size, kind) + payload + b"\0" * (-size % 4)


def _message(payload: bytes, prefix: bytes = b"netlab ingress drop \0") -> bytes:
    body = struct.pack("BBH", socket.AF_INET, 0, socket.htons(droplog.GROUP))
    body += _attr(1, struct.pack(">HBx", 0x0800, 2))            # NFULA_PACKET_HDR
    body += _attr(droplog.NFULA_PREFIX, prefix) + _attr(droplog.NFULA_PAYLOAD, payload)
    kind = (droplog.NFNL_SUBSYS_ULOG << 8) | droplog.NFULNL_MSG_PACKET
    return struct.pack("=IHHII", 16 + len(body), kind, 0, 0, 0) + body


def _ipv4(src: str, dst: str, proto: int, sport: int, dport: int, ihl: int = 5) -> bytes:
    header = bytes([0x40 | ihl, 0]) + b"\0" * 7 + bytes([proto]) + b"\0\0"
    header += socket.inet_aton(src) + socket.inet_aton(dst) + b"\0" * (4 * (ihl - 5))
    return header + struct.pack(">HH", sport, dport) + b"\0" * 16


def test_a_logged_syn_gives_its_addresses_ports_and_prefix() -> None:
    data = _message(_ipv4("172.16.0.2", "172.16.3.4", socket.IPPROTO_TCP, 40000, 80))
    data += _message(_ipv4("172.16.1.9", "172.16.0.7", socket.IPPROTO_UDP, 5353, 53, ihl=6), b"x\0")
    assert droplog.parse(data) == [
        droplog.Drop(socket.IPPROTO_TCP, "172.16.0.2", 40000, "172.16.3.4", 80, "netlab ingress drop "),
        droplog.Drop(socket.IPPROTO_UDP, "172.16.1.9", 5353, "172.16.0.7", 53, "x")]


def test_truncated_or_foreign_messages_are_skipped() -> None:
    not_ipv4 = _message(b"\x60" + b"\0" * 40)
    short = _message(_ipv4("10.0.0.1", "10.0.0.2", socket.IPPROTO_TCP, 1, 2)[:22])
    done = struct.pack("=IHHII", 20, 3, 0, 0, 0) + b"\0" * 4
    assert droplog.parse(not_ipv4 + short + done) == []
