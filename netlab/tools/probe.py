"""Reachability between pods: every ordered pair × port, all tried at once, from inside the pods.

One process, no forks: a socket keeps the namespace it was made in, so the prober steps
into each source pod's namespace to open that pod's sockets and then drives every socket
of every pod with one selector. TCP counts as allowed when the handshake completes; UDP
when a reply comes back (the built-in responder answers every datagram). A refusal, or
silence until the timeout (a NetworkPolicy drop), is not allowed.
"""
from __future__ import annotations

import errno
import os
import selectors
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import IPv4Address, ip_address
from itertools import groupby

from ..kernel import limits, netns
from ..model.lab import Protocol
from ..ops.record import LabRecord

DEFAULT_PORT = 80
UDP_RESEND = 0.2            # a lost datagram must not read as a policy drop
LISTEN_WAIT = 3.0           # containers started by `up` may still be binding their ports
FD_RESERVE = 64             # descriptors left for everything else this process opens
SOURCES_AT_ONCE = 64        # each server port sees at most this many SYNs at once: under a listen backlog of 128
PAYLOAD = b"netlab-probe\n"


class Outcome(StrEnum):
    CONNECTED = "connected"     # TCP handshake done
    REPLIED = "replied"         # UDP answer received
    REFUSED = "refused"         # RST or ICMP port unreachable: reachable, nothing listening
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"         # silence: dropped on the way

    @property
    def allowed(self) -> bool:
        return self in (Outcome.CONNECTED, Outcome.REPLIED)


@dataclass(frozen=True)
class PodEnd:
    key: str        # namespace/name
    netns: str
    ip: IPv4Address


@dataclass(frozen=True)
class Check:
    port: int
    protocol: Protocol


@dataclass(frozen=True)
class Result:
    src: str
    dst: str
    port: int
    protocol: Protocol
    outcome: Outcome

    @property
    def allowed(self) -> bool:
        return self.outcome.allowed

    def to_json(self) -> dict:
        """The contract's `probe --json` entry, plus `outcome`: why it was not allowed (refused:
        reachable but nothing listens; timeout: dropped on the way, as a policy does)."""
        return {"from": self.src, "to": self.dst, "port": self.port, "protocol": self.protocol.value,
                "allowed": self.allowed, "outcome": self.outcome.value}


def pods_of(record: LabRecord) -> list[PodEnd]:
    return [PodEnd(p.key, p.netns, ip_address(p.ip)) for p in record.pods]


def declared_ports(record: LabRecord, protocol: Protocol) -> list[int]:
    """Every containerPort some pod of the lab declares with `protocol`."""
    return sorted({p.port for pod in record.pods for p in pod.ports if p.protocol == protocol.value})


def default_ports(record: LabRecord, protocol: Protocol) -> list[int]:
    """What `probe` tries without --port: the ports the pods serve, else 80."""
    return declared_ports(record, protocol) or [DEFAULT_PORT]


# -- waiting for the servers ------------------------------------------------------------
def wait_for_listeners(record: LabRecord, checks: list[Check], limit: float = LISTEN_WAIT) -> list[str]:
    """Wait until each pod with containers has bound the probed ports it declares.

    Right after `up` a container may not have bound yet; without this wait a probe would
    report its startup as a policy drop. Returns "pod port/PROTO" for any still missing.
    """
    wanted: dict[str, set[tuple[int, Protocol]]] = {}
    for pod in record.pods:
        if not pod.containers:
            continue
        declared = {(p.port, Protocol(p.protocol)) for p in pod.ports}
        want = {(c.port, c.protocol) for c in checks} & declared
        if want:
            wanted[pod.netns] = want
    deadline = time.monotonic() + limit
    switch = netns.Switcher()
    try:
        while True:
            for ns_name in list(wanted):
                wanted[ns_name] -= _bound(switch, ns_name)
                if not wanted[ns_name]:
                    del wanted[ns_name]
            if not wanted or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
    finally:
        switch.close()
    return sorted(f"{ns_name} {port}/{proto.value}" for ns_name, ports in wanted.items() for port, proto in ports)


def _bound(switch: netns.Switcher, ns_name: str) -> set[tuple[int, Protocol]]:
    """Listening TCP and bound UDP ports in a namespace, read from /proc while inside it."""
    try:
        fd = netns.open_ns(ns_name)
    except FileNotFoundError:
        return set()
    found: set[tuple[int, Protocol]] = set()
    try:
        with switch.inside(fd):
            for table, proto, state in (("tcp", Protocol.TCP, netns.TCP_LISTEN),
                                        ("tcp6", Protocol.TCP, netns.TCP_LISTEN),
                                        ("udp", Protocol.UDP, netns.UDP_UNCONNECTED),
                                        ("udp6", Protocol.UDP, netns.UDP_UNCONNECTED)):
                found |= {(port, proto) for port in netns.bound_ports("/proc/thread-self/net", table, state)}
    finally:
        os.close(fd)
    return found


# -- probing --------------------------------------------------------------------------------
@dataclass
class _Attempt:
    src: PodEnd
    dst: PodEnd
    check: Check
    sock: socket.socket | None = None
    deadline: float = 0.0
    resend: float = field(default=float("inf"))


def probe(pods: list[PodEnd], checks: list[Check], timeout: float) -> list[Result]:
    """Every ordered pair of distinct pods × every check; each attempt waits at most `timeout`."""
    attempts = [_Attempt(src, dst, check) for src in pods for dst in pods if src.key != dst.key for check in checks]
    return _run(attempts, SOURCES_AT_ONCE * max(1, len(pods) - 1) * len(checks), timeout, pods)


def service_targets(record: LabRecord) -> list[tuple[PodEnd, Check]]:
    """Every port of every Service kube-proxy serves: (the Service as `svc/<ns>/<name>` at its ClusterIP, port)."""
    out = []
    for svc in record.services:
        ip = svc.cluster_ip
        if not ip or ip == "None":
            continue
        end = PodEnd(f"svc/{svc.key}", "", ip_address(ip))
        out += [(end, Check(port.port, Protocol(port.protocol))) for port in svc.ports
                if port.protocol in (Protocol.TCP.value, Protocol.UDP.value)]
    return out


def probe_services(pods: list[PodEnd], targets: list[tuple[PodEnd, Check]], timeout: float) -> list[Result]:
    """Every pod × every Service port (`netlab probe --services`): through kube-proxy's rules."""
    attempts = [_Attempt(src, dst, check) for src in pods for dst, check in targets]
    return _run(attempts, SOURCES_AT_ONCE * max(1, len(targets)), timeout, pods + [dst for dst, _ in targets])


def _run(attempts: list[_Attempt], window: int, timeout: float, ends: list[PodEnd]) -> list[Result]:
    todo = deque(attempts)
    # attempts go source by source, so the window also bounds the sources probing at once
    room = min(window, max(FD_RESERVE, limits.raise_open_files() - FD_RESERVE))
    results: list[Result] = []
    flying: dict[int, _Attempt] = {}
    sel = selectors.DefaultSelector()
    switch = netns.Switcher()
    try:
        while todo or flying:
            batch = [todo.popleft() for _ in range(min(len(todo), room - len(flying)))]
            for src, group in groupby(batch, key=lambda a: a.src):
                _start(switch, src, list(group), timeout, sel, flying, results)
            _wait(sel, flying, results)
    finally:
        for attempt in flying.values():
            attempt.sock.close()   # type: ignore[union-attr]
        sel.close()
        switch.close()
    order: dict[str, int] = {}
    for end in ends:
        order.setdefault(end.key, len(order))
    results.sort(key=lambda r: (order[r.src], order[r.dst], r.protocol.value, r.port))
    return results


def _start(switch: netns.Switcher, src: PodEnd, attempts: list[_Attempt], timeout: float,
           sel: selectors.BaseSelector, flying: dict[int, _Attempt], results: list[Result]) -> None:
    """Open (and send on) the sockets of one source pod, inside its namespace."""
    try:
        fd = netns.open_ns(src.netns)
    except FileNotFoundError:
        results += [_done(a, Outcome.UNREACHABLE) for a in attempts]   # the pod's namespace is gone
        return
    try:
        with switch.inside(fd):
            for attempt in attempts:
                outcome = _open(attempt, timeout)
                if outcome is not None:
                    results.append(_done(attempt, outcome))
                    continue
                sock = attempt.sock
                assert sock is not None
                event = selectors.EVENT_WRITE if attempt.check.protocol is Protocol.TCP else selectors.EVENT_READ
                sel.register(sock, event, attempt)
                flying[sock.fileno()] = attempt
    finally:
        os.close(fd)


def _open(attempt: _Attempt, timeout: float) -> Outcome | None:
    """Start one attempt; an outcome when it is already decided."""
    now = time.monotonic()
    attempt.deadline = now + timeout
    address = (str(attempt.dst.ip), attempt.check.port)
    if attempt.check.protocol is Protocol.UDP:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        attempt.sock = sock
        try:
            sock.connect(address)       # a connected UDP socket reports ICMP unreachables
            sock.send(PAYLOAD)
        except OSError as err:
            sock.close()
            return _error_outcome(err.errno)
        attempt.resend = now + UDP_RESEND
        return None
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
    attempt.sock = sock
    code = sock.connect_ex(address)
    if code not in (0, errno.EINPROGRESS):
        sock.close()
        return _error_outcome(code)
    return None


def _wait(sel: selectors.BaseSelector, flying: dict[int, _Attempt], results: list[Result]) -> None:
    """One round: handle what is ready, expire what timed out, resend UDP that got no answer."""
    if not flying:
        return
    wake = min(min(a.deadline, a.resend) for a in flying.values())
    for key, _ in sel.select(max(0.0, wake - time.monotonic())):
        attempt: _Attempt = key.data
        sock = attempt.sock
        assert sock is not None
        if attempt.check.protocol is Protocol.TCP:
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            outcome = Outcome.CONNECTED if code == 0 else _error_outcome(code)
        else:
            try:
                sock.recv(512)
                outcome = Outcome.REPLIED
            except BlockingIOError:
                continue
            except OSError as err:
                outcome = _error_outcome(err.errno)
        _finish(sel, flying, results, attempt, outcome)
    now = time.monotonic()
    for attempt in list(flying.values()):
        if now >= attempt.deadline:
            _finish(sel, flying, results, attempt, Outcome.TIMEOUT)
        elif now >= attempt.resend:
            attempt.resend = now + UDP_RESEND
            try:
                attempt.sock.send(PAYLOAD)   # type: ignore[union-attr]
            except OSError as err:
                _finish(sel, flying, results, attempt, _error_outcome(err.errno))


def _finish(sel: selectors.BaseSelector, flying: dict[int, _Attempt], results: list[Result],
            attempt: _Attempt, outcome: Outcome) -> None:
    sock = attempt.sock
    assert sock is not None
    flying.pop(sock.fileno(), None)
    sel.unregister(sock)
    sock.close()
    results.append(_done(attempt, outcome))


def _done(attempt: _Attempt, outcome: Outcome) -> Result:
    return Result(attempt.src.key, attempt.dst.key, attempt.check.port, attempt.check.protocol, outcome)


def _error_outcome(code: int | None) -> Outcome:
    return Outcome.REFUSED if code == errno.ECONNREFUSED else Outcome.UNREACHABLE
