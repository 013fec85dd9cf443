"""pcap streams to one pcapng (pure), read back by tshark when it is installed."""
from __future__ import annotations

import shutil
import struct
import subprocess

import pytest

from netlab.tools import pcapng

FRAME = bytes.fromhex("ffffffffffff" "020000000001" "0806") + b"\0" * 28   # an Ethernet frame (ARP type)


def pcap_header(endian="<", nano=False, linktype=1):
    return struct.pack(endian + "IHHiIII", pcapng.PCAP_NSEC if nano else pcapng.PCAP_USEC, 2, 4, 0, 0, 262144, linktype)


@pytest.mark.parametrize("endian", ["<", ">"])
def test_pcap_headers_of_either_byte_order(endian):
    header = pcapng.parse_header(pcap_header(endian, nano=True, linktype=276))
    assert header == pcapng.PcapHeader(endian, True, 262144, 276)
    record = struct.pack(endian + "IIII", 10, 20, 30, 40)
    assert pcapng.parse_record_header(header, record) == (10, 20, 30, 40)


def test_not_a_pcap_stream_is_refused():
    with pytest.raises(ValueError):
        pcapng.parse_header(b"\x0a\x0d\x0d\x0a" + b"\0" * 20)


def test_blocks_are_padded_and_framed():
    header = pcapng.parse_header(pcap_header())
    for block in (pcapng.section_header(), pcapng.interface_block(header, "default/web:eth0", "netns x"),
                  pcapng.packet_block(0, header, 1, 2, 43, FRAME[:41])):
        assert len(block) % 4 == 0
        assert struct.unpack("<I", block[4:8])[0] == len(block) == struct.unpack("<I", block[-4:])[0]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark (Debian tshark) is not installed")
def test_tshark_reads_names_descriptions_and_times(tmp_path):
    usec, nsec = pcapng.parse_header(pcap_header()), pcapng.parse_header(pcap_header(">", nano=True))
    data = (pcapng.section_header() + pcapng.interface_block(usec, "default/web:eth0", "netns lab.default.web")
            + pcapng.packet_block(0, usec, 1700000000, 250000, len(FRAME), FRAME)
            + pcapng.interface_block(nsec, "vpc:any", "netns lab.vpc")
            + pcapng.packet_block(1, nsec, 1700000001, 5, len(FRAME), FRAME))
    path = tmp_path / "x.pcapng"
    path.write_bytes(data)
    out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "frame.interface_name",
                          "-e", "frame.interface_description", "-e", "frame.time_epoch", "-e", "eth.src"],
                         capture_output=True, text=True, check=True).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    assert [(r[0], r[1], r[3]) for r in rows] == [("default/web:eth0", "netns lab.default.web", "02:00:00:00:00:01"),
                                                  ("vpc:any", "netns lab.vpc", "02:00:00:00:00:01")]
    assert rows[0][2].startswith("1700000000.250000") and rows[1][2].startswith("1700000001.000000005")
