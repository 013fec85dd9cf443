"""pcap in, pcapng out (pure): tcpdump's `-w -` streams, merged into one pcapng whose interfaces
carry names ("default/web:eth0") and the namespace each was captured in.

pcap: libpcap's savefile format (a 24-byte file header, a 16-byte header per record).
pcapng: the IETF draft (draft-ietf-opsawg-pcapng): a Section Header Block, one Interface
Description Block per capture point, then Enhanced Packet Blocks.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

PCAP_USEC, PCAP_NSEC = 0xA1B2C3D4, 0xA1B23C4D
SHB, IDB, EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
OPT_END, OPT_COMMENT = 0, 1
SHB_USERAPPL = 4
IF_NAME, IF_DESCRIPTION, IF_TSRESOL = 2, 3, 9


@dataclass(frozen=True)
class PcapHeader:
    """A pcap file header: byte order, timestamp resolution, snapshot length and link type."""

    endian: str          # "<" or ">"
    nanoseconds: bool
    snaplen: int
    linktype: int

    @property
    def record_format(self) -> str:
        return self.endian + "IIII"


def parse_header(raw: bytes) -> PcapHeader:
    """The 24-byte pcap file header (ValueError when it is not one)."""
    if len(raw) != 24:
        raise ValueError(f"a pcap file header is 24 bytes, got {len(raw)}")
    for endian in "<>":
        magic = struct.unpack(endian + "I", raw[:4])[0]
        if magic in (PCAP_USEC, PCAP_NSEC):
            _major, _minor, _zone, _sigfigs, snaplen, linktype = struct.unpack(endian + "HHiIII", raw[4:])
            return PcapHeader(endian, magic == PCAP_NSEC, snaplen, linktype & 0x0FFFFFFF)
    raise ValueError(f"not a pcap stream (magic {raw[:4].hex()})")


def parse_record_header(header: PcapHeader, raw: bytes) -> tuple[int, int, int, int]:
    """(seconds, fraction, captured length, original length) of one 16-byte record header."""
    return struct.unpack(header.record_format, raw)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _block(kind: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", kind, length) + body + struct.pack("<I", length)


def section_header(application: str = "netlab capture") -> bytes:
    body = struct.pack("<IHHq", BYTE_ORDER_MAGIC, 1, 0, -1)
    body += _option(SHB_USERAPPL, application.encode()) + _option(OPT_END, b"")
    return _block(SHB, body)


def interface_block(header: PcapHeader, name: str, description: str) -> bytes:
    body = struct.pack("<HHI", header.linktype, 0, header.snaplen)
    body += _option(IF_NAME, name.encode()) + _option(IF_DESCRIPTION, description.encode())
    body += _option(IF_TSRESOL, bytes([9 if header.nanoseconds else 6]))
    body += _option(OPT_END, b"")
    return _block(IDB, body)


def packet_block(interface: int, header: PcapHeader, seconds: int, fraction: int, original: int,
                 data: bytes) -> bytes:
    units = seconds * (1_000_000_000 if header.nanoseconds else 1_000_000) + fraction
    body = struct.pack("<IIIII", interface, units >> 32, units & 0xFFFFFFFF, len(data), original)
    body += data + b"\0" * (-len(data) % 4)
    return _block(EPB, body)
