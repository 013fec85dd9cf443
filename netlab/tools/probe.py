"""Reachability between pods: every ordered pair × port, exact at any size, from inside the pods.

One process, no forks: a socket keeps the namespace it was made in, so the prober steps
into each source pod's namespace to open that pod's sockets and then drives every socket
of every pod with one selector. TCP counts as allowed when the handshake completes; UDP
when a reply comes back (the built-in responder answers every datagram).

Exact, not just fast: a burst of thousands of SYNs over cold neighbour caches loses
packets, and silence alone cannot tell a loss from a NetworkPolicy drop. So:

1. Paced around the neighbour table. The main loss is ARP, not TCP: the kernel keeps one
   neighbour table for every namespace of the machine, holding at most gc_thresh3 (1024
   by default, a host sysctl netlab does not touch) dynamic entries; a packet whose next
   hop needs a new entry while it is full is dropped (/proc/net/stat/arp_cache counts
   table_fulls), and the kernel reclaims only entries unreferenced and older than 5 s —
   a REACHABLE entry stays referenced for 15-45 s. A 10 × 10 lab needs ~1,200 entries at
   once (each pod: its gateway and its 9 same-node peers). So cross-node pairs go first
   (they need few entries: each pod's gateway, each node's pods), then same-node pairs in
   groups that teach the kernel at most NEIGHBOURS_PER_GROUP entries; after each group the
   dynamic pod-to-pod entries it made are deleted (kernel/neighbours.py, as `ip neigh del`
   would; permanent entries are never touched). Within a group, tries go in rounds of
   offset k (pod i tries pod i+k), at most IN_FLIGHT open at once: each pod is the
   destination of a few at a time, far under its listen backlog (128).
2. Denied only on the kernel's word: every policy drop rule logs the packet to NFLOG group
   100 (core/policy/nft.py); the prober listens there in each node namespace
   (kernel/droplog.py) and an attempt whose packet (same addresses and ports) is logged is
   DENIED at once, without waiting for its timeout.
3. Silence without such a log is a loss, not a verdict: the attempt is tried again, with a
   new socket, after each of RETRY_PAUSES (the later ones long enough for REACHABLE
   entries elsewhere to go STALE and be reclaimed); so is EHOSTUNREACH, a neighbour that
   did not resolve. Only an attempt silent on every try is reported TIMEOUT ("no answer").
4. Before calling silence, the socket itself is asked: TCP_INFO says ESTABLISHED (or
   CLOSE_WAIT) when the handshake completed while the loop was busy elsewhere.

An RST or ICMP port unreachable is REFUSED at once (reachable, nothing listening): the
kernel answered. With the drop log unavailable (a second probe holds the group, or a
kernel without NFLOG) a policy drop is silence on every try: still reported not allowed,
after the retries (about a minute). Listening ports are checked first with sock_diag
(wait_for_listeners), so a server still starting is not reported as refused.
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

from ..kernel import droplog, labresponder, limits, neighbours, netns
from ..model.lab import Protocol
from ..ops.record import LabRecord

DEFAULT_PORT = 80
UDP_RESEND = 0.2            # a lost datagram must not read as a policy drop
LISTEN_WAIT = 15.0          # containers started by `up` may still be binding their ports (100s, on a busy machine)
FD_RESERVE = 64             # descriptors left for everything else this process opens
IN_FLIGHT = 512             # attempts open at once across the lab
NEIGHBOURS_PER_GROUP = 400  # neighbour entries a group of same-node pairs may teach the kernel
# before each retry of a silent attempt: quick ones for a lost SYN, then long enough for the
# neighbour entries of other pairs to leave REACHABLE (15-45 s) so the kernel can reclaim them
RETRY_PAUSES = (0.2, 1.0, 5.0, 15.0, 30.0)
PAYLOAD = b"netlab-probe\n"
TCP_ESTABLISHED, TCP_CLOSE_WAIT = 1, 8        # tcpi_state values (linux/tcp.h)
ARP_STATS = "/proc/net/stat/arp_cache"       # the machine's neighbour table (init_net only)


class Outcome(StrEnum):
    CONNECTED = "connected"     # TCP handshake done
    REPLIED = "replied"         # UDP answer received
    REFUSED = "refused"         # RST or ICMP port unreachable: reachable, nothing listening
    UNREACHABLE = "unreachable"
    DENIED = "denied"           # a NetworkPolicy drop rule logged this attempt's packet
    TIMEOUT = "timeout"         # silence on every try, and no policy said it dropped it

    @property
    def allowed(self) -> bool:
        return self in (Outcome.CONNECTED, Outcome.REPLIED)


@dataclass(frozen=True)
class PodEnd:
    """One end of a probe: a pod (or a Service at its ClusterIP), its network namespace, IP, and its
    node's namespace."""

    key: str        # namespace/name
    netns: str
    ip: IPv4Address
    node_netns: str = ""   # where its policy rules (and their drop log) live


@dataclass(frozen=True)
class Check:
    """What to try between two ends: a port and protocol."""

    port: int
    protocol: Protocol


@dataclass(frozen=True)
class Result:
    """One probe's outcome from one end to another on one port and protocol."""

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
        reachable but nothing listens; denied: a policy's drop rule logged it; timeout: no
        answer on any try and no policy drop logged)."""
        return {"from": self.src, "to": self.dst, "port": self.port, "protocol": self.protocol.value,
                "allowed": self.allowed, "outcome": self.outcome.value}


def pods_of(record: LabRecord) -> list[PodEnd]:
    nodes = {n.name: n.netns for n in record.nodes}
    return [PodEnd(p.key, p.netns, ip_address(p.ip), nodes.get(p.node, "")) for p in record.pods]


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
        if labresponder.serves(pod.containers, record.responder):
            continue   # netlab bound these sockets in the pod itself
        declared = {(p.port, Protocol(p.protocol)) for p in pod.ports}
        want = {(c.port, c.protocol) for c in checks} & declared
        if want:
            wanted[pod.netns] = want
    missing = netns.wait_bound(wanted, limit)
    return sorted(f"{ns_name} {port}/{proto.value}" for ns_name, ports in missing.items() for port, proto in ports)


# -- probing --------------------------------------------------------------------------------
@dataclass
class _Attempt:
    """One check from one end to another as it is tried: its tries so far, the current socket, and when
    it times out, is sent again (UDP) or may be tried again."""

    src: PodEnd
    dst: PodEnd
    check: Check
    tries: int = 0
    not_before: float = 0.0
    sock: socket.socket | None = None
    key: tuple | None = None        # (protocol, src ip, sport, dst ip, dport) of this try, as the drop log has it
    deadline: float = 0.0
    resend: float = field(default=float("inf"))


@dataclass
class ProbeRun:
    """The results and how they were reached (for the summary line and the benchmark)."""

    results: list[Result]
    tries: int = 0                  # sockets opened (attempts + retries)
    retried: int = 0                # attempts tried more than once
    drop_log_nodes: list[str] = field(default_factory=list)
    drop_log_refused: dict[str, str] = field(default_factory=dict)
    neighbour_table_full: int | None = None   # table_fulls during the run, machine-wide


def probe(pods: list[PodEnd], checks: list[Check], timeout: float) -> list[Result]:
    """Every ordered pair of distinct pods × every check; each try waits at most `timeout`."""
    return run(pods, checks, timeout).results


def run(pods: list[PodEnd], checks: list[Check], timeout: float, drop_log: bool = True) -> ProbeRun:
    """probe(), with how it went. drop_log=False for a lab without policies: nothing to read,
    and binding NFLOG would make the kernel load nfnetlink_log where it is a module."""
    return _run_groups(_groups(pods, checks), pods, pods, timeout, drop_log)


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


def probe_services(pods: list[PodEnd], targets: list[tuple[PodEnd, Check]], timeout: float,
                   drop_log: bool = True) -> list[Result]:
    """Every pod × every Service port (`netlab probe --services`), through kube-proxy's rules, with
    the same pacing, drop log and retries as pod pairs (a policy applies after the DNAT)."""
    attempts = [_Attempt(src, dst, check) for src in pods for dst, check in targets]
    return _run_groups([attempts], pods, pods + [dst for dst, _ in targets], timeout, drop_log).results


def _run_groups(groups: list[list[_Attempt]], pods: list[PodEnd], ends: list[PodEnd], timeout: float,
                drop_log: bool) -> ProbeRun:
    node_ns = sorted({p.node_netns for p in pods if p.node_netns})
    room = min(IN_FLIGHT, max(16, limits.raise_open_files() - FD_RESERVE - len(pods) - len(node_ns)))
    full_before = _neighbour_table_fulls()
    out = ProbeRun([])
    log = droplog.DropLog(node_ns if drop_log else [])
    out.drop_log_nodes, out.drop_log_refused = list(log.listening), dict(log.refused)
    sel = selectors.DefaultSelector()
    for sock in log.socks.values():
        sel.register(sock, selectors.EVENT_READ, None)
    sources = _Sources()
    try:
        for group in groups:
            _drive(deque(group), room, timeout, sel, log, sources, out)
            if group and group[0].src.node_netns == group[0].dst.node_netns:
                _forget(sources, group)
    finally:
        sel.close()
        log.close()
        sources.close()
    full_after = _neighbour_table_fulls()
    if full_before is not None and full_after is not None:
        out.neighbour_table_full = full_after - full_before
    order: dict[str, int] = {}
    for end in ends:
        order.setdefault(end.key, len(order))
    out.results.sort(key=lambda r: (order[r.src], order[r.dst], r.protocol.value, r.port))
    return out


def _groups(pods: list[PodEnd], checks: list[Check]) -> list[list[_Attempt]]:
    """Cross-node pairs first (they need few neighbour entries: each pod's gateway, each node's
    pods), then same-node pairs (two entries each: the pods resolve each other) in groups
    that teach the kernel at most NEIGHBOURS_PER_GROUP entries; within a group, rounds of
    offset k (pod i tries pod i+k)."""
    n = len(pods)
    pairs = [(pods[i], pods[(i + k) % n]) for k in range(1, n) for i in range(n)]
    cross = [_Attempt(s, d, c) for s, d in pairs if not s.node_netns or s.node_netns != d.node_netns for c in checks]
    same = [(s, d) for s, d in pairs if s.node_netns and s.node_netns == d.node_netns]
    groups = [cross]
    size = max(1, NEIGHBOURS_PER_GROUP // 2)
    for start in range(0, len(same), size):
        groups.append([_Attempt(s, d, c) for s, d in same[start:start + size] for c in checks])
    return [g for g in groups if g]


def _forget(sources: _Sources, group: list[_Attempt]) -> None:
    """Delete the pod-to-pod neighbour entries this group of same-node pairs made."""
    peers: dict[str, set[IPv4Address]] = {}
    for attempt in group:
        peers.setdefault(attempt.src.netns, set()).add(attempt.dst.ip)
        peers.setdefault(attempt.dst.netns, set()).add(attempt.src.ip)
    try:
        for name, ips in peers.items():
            if sources.enter(name):
                neighbours.forget(ips)
    finally:
        sources.home()


def _drive(todo: deque[_Attempt], room: int, timeout: float, sel: selectors.BaseSelector,
           log: droplog.DropLog, sources: _Sources, out: ProbeRun) -> None:
    """Run attempts to their outcomes, at most `room` open at once, retrying silent ones."""
    flying: dict[tuple, _Attempt] = {}
    waiting: list[_Attempt] = []        # silent attempts waiting for their retry
    try:
        while todo or flying or waiting:
            now = time.monotonic()
            if waiting and len(flying) < room:
                ready = [a for a in waiting if a.not_before <= now]
                if ready:
                    waiting = [a for a in waiting if a.not_before > now]
                    todo.extendleft(reversed(ready))
            while todo and len(flying) < room:
                attempt = todo.popleft()
                outcome = _open(sources, attempt, timeout)
                if outcome is not None:
                    out.results.append(_done(attempt, outcome))
                else:
                    out.tries += 1
                    sel.register(attempt.sock, _event(attempt), attempt)   # type: ignore[arg-type]
                    flying[attempt.key] = attempt                         # type: ignore[index]
            sources.home()
            _wait(sel, log, flying, waiting, out, timeout)
    finally:
        for attempt in list(flying.values()):
            _close(sel, flying, attempt)


class _Sources:
    """Steps the thread into source pods' namespaces; each namespace opened once per run."""

    def __init__(self) -> None:
        self.switch = netns.Switcher()
        self.fds: dict[str, int | None] = {}
        self.current: str | None = None

    def enter(self, name: str) -> bool:
        if name == self.current:
            return True
        if name not in self.fds:
            try:
                self.fds[name] = netns.open_ns(name)
            except FileNotFoundError:
                self.fds[name] = None
        fd = self.fds[name]
        if fd is None:
            return False
        self.switch.enter(fd)
        self.current = name
        return True

    def home(self) -> None:
        if self.current is not None:
            self.switch.go_home()
            self.current = None

    def close(self) -> None:
        self.home()
        for fd in self.fds.values():
            if fd is not None:
                os.close(fd)
        self.switch.close()


def _event(attempt: _Attempt) -> int:
    return selectors.EVENT_WRITE if attempt.check.protocol is Protocol.TCP else selectors.EVENT_READ


def _open(sources: _Sources, attempt: _Attempt, timeout: float) -> Outcome | None:
    """Start one try inside the source pod; an outcome when it is already decided."""
    if not sources.enter(attempt.src.netns):
        return Outcome.UNREACHABLE   # the pod's namespace is gone
    now = time.monotonic()
    attempt.tries += 1
    attempt.deadline = now + timeout
    address = (str(attempt.dst.ip), attempt.check.port)
    udp = attempt.check.protocol is Protocol.UDP
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    sock = socket.socket(socket.AF_INET, kind | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
    if udp:
        try:
            sock.connect(address)       # a connected UDP socket reports ICMP unreachables
            sock.send(PAYLOAD)
        except OSError as err:
            sock.close()
            return _error_outcome(err.errno)
        attempt.resend = now + UDP_RESEND
    else:
        code = sock.connect_ex(address)
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            return _error_outcome(code)
    local, sport = sock.getsockname()
    attempt.sock = sock
    attempt.key = (socket.IPPROTO_UDP if udp else socket.IPPROTO_TCP, local, sport, address[0], address[1])
    return None


def _wait(sel: selectors.BaseSelector, log: droplog.DropLog, flying: dict[tuple, _Attempt],
          waiting: list[_Attempt], out: ProbeRun, timeout: float) -> None:
    """One round: drops logged, sockets ready, tries expired (retried or given up), UDP resent."""
    wakes = [a.deadline if a.resend > a.deadline else a.resend for a in flying.values()]
    if waiting:
        wakes.append(min(a.not_before for a in waiting))
    if not wakes:
        return
    events = sel.select(max(0.0, min(wakes) - time.monotonic()))
    for key, _ in events:   # the drop log first: a denial decides even a try about to expire
        if key.data is None:
            for drop in log.read(key.fileobj):   # type: ignore[arg-type]
                attempt = flying.get((drop.protocol, drop.src, drop.sport, drop.dst, drop.dport))
                if attempt is not None:
                    _finish(sel, flying, out, attempt, Outcome.DENIED)
    for key, _ in events:
        attempt = key.data
        if attempt is None or flying.get(attempt.key) is not attempt:
            continue
        outcome = _ready_outcome(attempt)
        if outcome is Outcome.UNREACHABLE:
            _retry_or_finish(sel, flying, waiting, out, attempt, outcome)
        elif outcome is not None:
            _finish(sel, flying, out, attempt, outcome)
    now = time.monotonic()
    for attempt in list(flying.values()):
        if now >= attempt.deadline:
            outcome = _ready_outcome(attempt) or _late_outcome(attempt)
            if outcome is None or outcome is Outcome.UNREACHABLE:
                _retry_or_finish(sel, flying, waiting, out, attempt, outcome or Outcome.TIMEOUT)
            else:
                _finish(sel, flying, out, attempt, outcome)
        elif now >= attempt.resend:
            attempt.resend = now + UDP_RESEND
            try:
                attempt.sock.send(PAYLOAD)   # type: ignore[union-attr]
            except OSError as err:
                _finish(sel, flying, out, attempt, _error_outcome(err.errno))


def _retry_or_finish(sel: selectors.BaseSelector, flying: dict[tuple, _Attempt], waiting: list[_Attempt],
                     out: ProbeRun, attempt: _Attempt, outcome: Outcome) -> None:
    """Silence (or EHOSTUNREACH: a neighbour that did not resolve) is retried, then final."""
    if attempt.tries > len(RETRY_PAUSES):
        _finish(sel, flying, out, attempt, outcome)
        return
    _close(sel, flying, attempt)
    attempt.not_before = time.monotonic() + RETRY_PAUSES[attempt.tries - 1]
    out.retried += attempt.tries == 1
    waiting.append(attempt)


def _ready_outcome(attempt: _Attempt) -> Outcome | None:
    """What a socket says without waiting: connected, answered, refused; None: nothing yet."""
    sock = attempt.sock
    assert sock is not None
    if attempt.check.protocol is Protocol.TCP:
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code in (0, errno.EINPROGRESS, errno.EALREADY):
            return None if code else (Outcome.CONNECTED if _tcp_state(sock) in (TCP_ESTABLISHED, TCP_CLOSE_WAIT)
                                      else None)
        return _error_outcome(code)
    try:
        sock.recv(512)
        return Outcome.REPLIED
    except BlockingIOError:
        return None
    except OSError as err:
        return _error_outcome(err.errno)


def _late_outcome(attempt: _Attempt) -> Outcome | None:
    """At the deadline: a handshake that completed while the loop was busy still counts."""
    if attempt.check.protocol is Protocol.TCP and _tcp_state(attempt.sock) in (TCP_ESTABLISHED, TCP_CLOSE_WAIT):
        return Outcome.CONNECTED
    return None


def _tcp_state(sock: socket.socket | None) -> int:
    assert sock is not None
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def _close(sel: selectors.BaseSelector, flying: dict[tuple, _Attempt], attempt: _Attempt) -> None:
    sock = attempt.sock
    assert sock is not None
    flying.pop(attempt.key, None)   # type: ignore[arg-type]
    sel.unregister(sock)
    if attempt.check.protocol is Protocol.TCP:
        # RST, not FIN: no TIME_WAIT left in the pods, nothing more for the server to answer
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()
    attempt.sock = None


def _finish(sel: selectors.BaseSelector, flying: dict[tuple, _Attempt], out: ProbeRun,
            attempt: _Attempt, outcome: Outcome) -> None:
    _close(sel, flying, attempt)
    out.results.append(_done(attempt, outcome))


def _done(attempt: _Attempt, outcome: Outcome) -> Result:
    return Result(attempt.src.key, attempt.dst.key, attempt.check.port, attempt.check.protocol, outcome)


def _error_outcome(code: int | None) -> Outcome:
    return Outcome.REFUSED if code == errno.ECONNREFUSED else Outcome.UNREACHABLE


def _neighbour_table_fulls() -> int | None:
    """How often the machine's neighbour (ARP) table refused a new entry, since boot."""
    try:
        with open(ARP_STATS) as f:
            column = f.readline().split().index("table_fulls")
            return sum(int(line.split()[column], 16) for line in f if line.strip())   # one line per CPU
    except (OSError, ValueError, IndexError):
        return None
