"""`netlab capture`: tcpdump inside lab namespaces, one process per capture point, merged.

Each tcpdump runs inside its namespace, carries the lab's container marker (so `netlab down`
finds and stops any that are left) and dies with the netlab that started it. One point: its
pcap or text passes through as tcpdump wrote it. Several: text lines prefixed with the point,
or one pcapng with an interface per point named `<target>:<iface>` (netlab.tools.pcapng).
"""
from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from typing import BinaryIO

from ..errors import InputError, NetlabError
from ..kernel import netns, procs
from ..ops import targets
from . import pcapng

ANY = "any"
CAPTURE_CONTAINER = "tcpdump"


@dataclass(frozen=True)
class Point:
    """One interface of one lab namespace to capture on."""
    lab: str
    target: str          # default/web, node-1, vpc
    netns: str
    iface: str

    @property
    def label(self) -> str:
        return f"{self.target}:{self.iface}"


def interfaces_of(netns_name: str) -> list[str]:
    try:
        fd = netns.open_ns(netns_name)
    except FileNotFoundError:
        raise NetlabError(f"namespace {netns_name} is gone: run `netlab up` again to rebuild its lab") from None
    switch = netns.Switcher()
    try:
        with switch.inside(fd):
            return [name for _, name in socket.if_nameindex()]
    finally:
        switch.close()
        os.close(fd)


def _one_target(text: str, lab_name: str | None) -> tuple[str, str, str, str]:
    """(lab, target label, netns, default interface) of a pod, a node, or `vpc`."""
    if text == "vpc":
        record = targets.load_lab(lab_name)
        if record.underlay is None:
            raise NetlabError(f"lab {record.name!r} has no underlay (vpc) recorded")
        return record.name, "vpc", record.underlay.netns, ANY
    where = targets.resolve(text, lab_name)
    return where.lab, where.name, where.netns, "eth0"


def is_target(text: str, lab_name: str | None) -> bool:
    """Whether every comma-separated part of `text` names a pod, a node or `vpc`."""
    try:
        for part in text.split(","):
            _one_target(part.split(":", 1)[0], lab_name)
    except NetlabError:
        return False
    return True


def parse_arguments(args: list[str], lab_name: str | None) -> tuple[list[Point], list[str]]:
    """TARGET[,TARGET...] [TARGET ...] [IFACE] [FILTER...]; TARGET may be TARGET:IFACE."""
    if not args:
        raise InputError("give a TARGET: a pod, a node or vpc (several: web,db,vpc)")
    texts = [args[0]]
    rest = list(args[1:])
    while rest and is_target(rest[0], lab_name):
        texts.append(rest.pop(0))
    resolved = []
    for text in (part for t in texts for part in t.split(",") if part):
        name, _, iface = text.partition(":")
        resolved.append((_one_target(name, lab_name), iface or None))
    labs = {r[0][0] for r in resolved}
    if len(labs) > 1:
        raise InputError(f"targets in several labs ({', '.join(sorted(labs))}): pick one with --name")
    shared = None
    if rest and (rest[0] == ANY or all(rest[0] in interfaces_of(r[0][2]) for r in resolved)):
        shared = rest.pop(0)
    points = []
    for (lab, target, ns_name, default), iface in resolved:
        chosen = iface or shared or default
        have = interfaces_of(ns_name)
        if chosen != ANY and chosen not in have:
            raise InputError(f"{target} has no interface {chosen!r}; it has {', '.join(have)} (or any)")
        points.append(Point(lab, target, ns_name, chosen))
    if len({p.label for p in points}) != len(points):
        raise InputError("the same interface of the same target is named twice")
    return points, rest


@dataclass
class Capturing:
    """A running tcpdump for one point and what has been read from it so far."""
    point: Point
    proc: subprocess.Popen
    buffer: bytearray = field(default_factory=bytearray)
    header: pcapng.PcapHeader | None = None
    interface_id: int | None = None
    packets: int = 0
    err: bytearray = field(default_factory=bytearray)


def tcpdump_argv(tool: str, point: Point, binary: bool, count: int | None, expression: list[str]) -> list[str]:
    # immediate mode: packets are handed over as they come, not when a ring block times out
    argv = [tool, "-n", "--immediate-mode", "-i", point.iface]
    argv += ["-U", "-w", "-"] if binary else ["-l"]
    if count:
        argv += ["-c", str(count)]
    return argv + expression


def start(tool: str, points: list[Point], binary: bool, count: int | None, expression: list[str]) -> list[Capturing]:
    """Start one tcpdump per point and wait until each is listening (or has failed)."""
    running: list[Capturing] = []
    try:
        for point in points:
            env = dict(os.environ, **{procs.ENV_LAB: point.lab, procs.ENV_POD: f"capture {point.label}",
                                      procs.ENV_CONTAINER: CAPTURE_CONTAINER})
            fd = netns.open_ns(point.netns)
            try:
                proc = subprocess.Popen(tcpdump_argv(tool, point, binary, count, expression), stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                        start_new_session=True, pass_fds=(fd,),
                                        preexec_fn=netns.child_joining(fd, die_with_parent=True))
            finally:
                os.close(fd)
            running.append(Capturing(point, proc))
        for cap in running:
            _wait_listening(cap)
    except BaseException:
        stop(running)
        raise
    return running


def _wait_listening(cap: Capturing) -> None:
    """tcpdump says `listening on IFACE` on stderr once its socket is open: the capture is live."""
    assert cap.proc.stderr is not None
    while b"listening on" not in cap.err:
        chunk = os.read(cap.proc.stderr.fileno(), 4096)
        if not chunk:
            cap.proc.wait()
            message = cap.err.decode(errors="replace").strip()
            if "expression" in message or "syntax" in message:
                raise InputError(f"FILTER: tcpdump refused it: {message}")
            raise NetlabError(f"tcpdump on {cap.point.label} (namespace {cap.point.netns}) failed: "
                              f"{message or f'exit {cap.proc.returncode}'}")
        cap.err += chunk


def stop(running: list[Capturing]) -> None:
    """SIGINT (tcpdump flushes and exits), then SIGKILL what is left; reap all."""
    for cap in running:
        if cap.proc.poll() is None:
            try:
                os.killpg(cap.proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass
    for cap in running:
        try:
            cap.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(cap.proc.pid, signal.SIGKILL)
            cap.proc.wait()


def relay(running: list[Capturing], out: BinaryIO, binary: bool, count: int | None, in_order: bool = False) -> None:
    """Copy the captures to `out` until every tcpdump has finished or `count` packets were written.

    in_order (a file, not a stream): merged packets are written at the end, in time order, as
    mergecap would; a stream gets them as they arrive."""
    merged = len(running) > 1
    held: list[tuple[int, bytes]] | None = [] if in_order and merged and binary else None
    sel = selectors.DefaultSelector()
    for cap in running:
        assert cap.proc.stdout is not None and cap.proc.stderr is not None
        sel.register(cap.proc.stdout, selectors.EVENT_READ, (cap, "out"))
        sel.register(cap.proc.stderr, selectors.EVENT_READ, (cap, "err"))
    next_id = [0]
    total = 0
    if merged and binary:
        out.write(pcapng.section_header())
    stopping = False
    try:
        while sel.get_map():
            for key, _ in sel.select():
                cap, which = key.data
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                if which == "err":
                    cap.err += chunk
                    continue
                if stopping:
                    continue   # the count is reached: what tcpdump flushes on its way out is dropped
                if not merged:
                    out.write(chunk)   # tcpdump's own pcap or text, as it wrote it (-c is tcpdump's)
                    out.flush()
                    continue
                cap.buffer += chunk
                written = _drain(cap, out, binary, next_id, held)
                total += written
                if written:
                    out.flush()
                if count and total >= count and not stopping:
                    stopping = True
                    stop(running)
    except BrokenPipeError:   # the reader (wireshark, head) went away: stop capturing
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())   # nothing left to flush into the pipe
    finally:
        sel.close()
        stop(running)
        for _, block in sorted(held or [], key=lambda item: item[0]):
            out.write(block)


def _drain(cap: Capturing, out: BinaryIO, binary: bool, next_id: list[int],
           held: list[tuple[int, bytes]] | None) -> int:
    """Write the complete records (or lines) in cap.buffer; returns how many packets."""
    written = 0
    if not binary:
        while b"\n" in cap.buffer:
            line, _, rest = bytes(cap.buffer).partition(b"\n")
            cap.buffer[:] = rest
            out.write(f"[{cap.point.label}] ".encode() + line + b"\n")
            cap.packets += 1
            written += 1
        return written
    if cap.header is None:
        if len(cap.buffer) < 24:
            return 0
        cap.header = pcapng.parse_header(bytes(cap.buffer[:24]))
        del cap.buffer[:24]
        cap.interface_id = next_id[0]
        next_id[0] += 1
        out.write(pcapng.interface_block(cap.header, cap.point.label, f"netns {cap.point.netns}"))
    while len(cap.buffer) >= 16:
        seconds, fraction, caplen, original = pcapng.parse_record_header(cap.header, bytes(cap.buffer[:16]))
        if len(cap.buffer) < 16 + caplen:
            break
        data = bytes(cap.buffer[16:16 + caplen])
        del cap.buffer[:16 + caplen]
        assert cap.interface_id is not None
        block = pcapng.packet_block(cap.interface_id, cap.header, seconds, fraction, original, data)
        if held is None:
            out.write(block)
        else:
            held.append((seconds * 1_000_000_000 + fraction * (1 if cap.header.nanoseconds else 1000), block))
        cap.packets += 1
        written += 1
    return written
