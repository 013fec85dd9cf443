"""`netlab trace`: a packet's path, predicted from the kernel's state and observed on the wire.

Predicted: namespace by namespace, the route the kernel picks for the flow (RTM_GETROUTE, as
`ip route get ... iif ...`), the neighbour entry for the next hop, the bridge's fdb (or the
port toward the address when the bridge has not learned it), VXLAN encapsulation from the
device and its fdb (outer addresses, VNI, port) and decapsulation where the outer address is
local, macvlan children by MAC, and the NetworkPolicy verdict (netlab.core.policy.evaluate, the
same as `netlab policy explain`) at the node that forwards the packet.

Observed: one tcpdump per (namespace, interface) of the predicted path, then one real packet
(an ICMP echo with its own id, a TCP SYN or a UDP datagram from its own source port); each hop
is observed when its interface saw that packet (inside VXLAN too).
"""
from __future__ import annotations

import os
import random
import re
import socket
import struct
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Address, ip_address, ip_network
from typing import Callable

from ..kernel.readback import LinkView, NetnsView, RouteGet

MAX_HOPS = 40


@dataclass(frozen=True)
class Flow:
    """A packet's header as the trace follows it: source and destination addresses, protocol, destination port."""

    src: str
    dst: str
    protocol: str            # TCP | UDP | ICMP
    port: int | None         # destination port (TCP/UDP)


@dataclass
class Hop:
    """One hop of the predicted path: a namespace, the interfaces in and out, what happens there, and
    whether the probe was seen there."""

    netns: str
    in_: str | None
    out: str | None
    action: str              # route | bridge | encap | decap | macvlan | deliver | drop
    detail: str
    outer: Flow | None = None   # the header this hop carries the packet in (VXLAN), None: the flow itself
    observed: bool = False
    seen_on: str | None = None   # where to watch, when not where the packet comes in
    nat: Flow | None = None      # the packet's own header here when a NAT before changed it
    sealed: bool = False         # the outer header carries it encrypted (WireGuard): only that is readable

    def header(self, flow: Flow) -> Flow:
        """The packet's own header at this hop (a DNAT hop watches it come in, untranslated)."""
        return flow if self.action == "dnat" or self.nat is None else self.nat

    @property
    def watch(self) -> str | None:
        return self.seen_on or self.in_ or self.out

    def to_json(self) -> dict:
        return {"netns": self.netns, "in": self.in_, "out": self.out, "action": self.action,
                "detail": self.detail, "observed": self.observed}


@dataclass
class Lab:
    """What the walk reads: every namespace of the lab, and the kernel's route lookup."""
    views: dict[str, NetnsView]
    route_get: Callable[[str, str, str | None, str | None], RouteGet]
    node_of_netns: dict[str, str] = field(default_factory=dict)   # node namespace -> node name
    # which namespaces a veth of each may lead to (pod <-> its node <-> the VPC): interface
    # indexes are per namespace, so an index alone would match in several
    adjacent: dict[str, set[str]] = field(default_factory=dict)
    # kube-proxy's Service map per node namespace, read from its nftables table (parse_kube_proxy)
    services: dict[str, dict[tuple[str, str, int], "Dnat"]] = field(default_factory=dict)
    # WireGuard devices per namespace, read with `wg show DEV dump`
    wireguard: dict[str, "WgView"] = field(default_factory=dict)

    def near(self, ns: str, other: str) -> bool:
        return other != ns and (not self.adjacent or other in self.adjacent.get(ns, ()))

    def parent(self, ns: str, child: LinkView) -> tuple[str, LinkView] | None:
        """A macvlan/ipvlan child's parent interface: in the child's namespace (a node's shim), or
        in the namespace next to it (a pod's eth0)."""
        if child.peer_netnsid is None:
            found = self.views[ns].by_index(child.peer_index or 0)
            return (ns, found) if found is not None else None
        for other, view in self.views.items():
            found = view.by_index(child.peer_index or 0) if self.near(ns, other) else None
            if found is not None:
                return other, found
        return None

    def peer(self, ns: str, link: LinkView) -> tuple[str, LinkView] | None:
        """The other end of a veth, in another namespace of the lab."""
        for other, view in self.views.items():
            if not self.near(ns, other):
                continue
            found = view.by_index(link.peer_index) if link.peer_index else None
            if found is not None and found.kind == "veth" and found.peer_index == link.index:
                return other, found
        return None

    def owner_of_ip(self, ip: str) -> tuple[str, LinkView] | None:
        for ns, view in self.views.items():
            for link in view.links:
                if any(a.split("/")[0] == ip for a in link.addresses) and link.kind != "vxlan":
                    return ns, link
        return None

    def owner_of_mac(self, mac: str) -> tuple[str, LinkView] | None:
        for ns, view in self.views.items():
            for link in view.links:
                if link.mac == mac and link.kind != "bridge":
                    return ns, link
        return None


Policy = Callable[[str, str], tuple[bool, str] | None]   # (node, "egress"|"ingress") -> (allowed, why)


@dataclass(frozen=True)
class Dnat:
    """One Service port in kube-proxy's nftables table: `service-ips` sends it to `chain`, whose
    `numgen random mod N` picks one endpoint chain, whose rule is `dnat to IP:PORT`."""
    chain: str
    endpoints: tuple[tuple[str, int, str], ...]   # (ip, port, endpoint chain), in the vmap's order
    verdict: str = ""        # with no endpoints: the `no-endpoint-services` verdict (goto reject-chain, drop)


_CHAIN = re.compile(r"^\tchain (\S+) \{\n(.*?)^\t\}", re.M | re.S)
_ELEMENT = re.compile(r"(\d+\.\d+\.\d+\.\d+) \. (tcp|udp|sctp) \. (\d+) : goto (\S+?)(?=[,\s}])")
_NO_ENDPOINTS = re.compile(r"(\d+\.\d+\.\d+\.\d+) \. (tcp|udp|sctp) \. (\d+)(?: comment \"[^\"]*\")? : "
                           r"(goto reject-chain|drop)")


@dataclass(frozen=True)
class WgView:
    """A WireGuard device as `wg show DEV dump` gives it: its port, and each peer's public key,
    endpoint (IP, port) and AllowedIPs."""
    dev: str
    listen_port: int
    peers: tuple[tuple[str, str, int, tuple[str, ...]], ...]

    def peer_for(self, ip: str) -> tuple[str, str, int, tuple[str, ...]] | None:
        """The peer whose AllowedIPs hold `ip` (the longest prefix, as WireGuard's cryptokey routing)."""
        best, length = None, -1
        for peer in self.peers:
            for cidr in peer[3]:
                net = ip_network(cidr, strict=False)
                if ip_address(ip) in net and net.prefixlen > length:
                    best, length = peer, net.prefixlen
        return best


def parse_kube_proxy(text: str) -> dict[tuple[str, str, int], Dnat]:
    """(ClusterIP, protocol, port) -> its Dnat, from `nft list table ip kube-proxy`."""
    chains = {m.group(1): m.group(2) for m in _CHAIN.finditer(text)}
    start = text.find("map service-ips {")
    block = text[start:text.find("\n\t}", start)] if start >= 0 else ""
    out = {}
    for ip, proto, port, chain in _ELEMENT.findall(block):
        body = chains.get(chain, "")
        names = list(dict.fromkeys(re.findall(r"goto (endpoint-\S+?)(?=[,\s}]|$)", body, re.M)))
        eps = []
        for name in names:
            dnat = re.search(r"dnat to (\d+\.\d+\.\d+\.\d+):(\d+)", chains.get(name, ""))
            if dnat:
                eps.append((dnat.group(1), int(dnat.group(2)), name))
        out[(ip, proto, int(port))] = Dnat(chain, tuple(eps))
    start = text.find("map no-endpoint-services {")
    block = text[start:text.find("\n\t}", start)] if start >= 0 else ""
    for ip, proto, port, verdict in _NO_ENDPOINTS.findall(block):
        out.setdefault((ip, proto, int(port)), Dnat("no-endpoint-services", (), verdict))
    return out


def predict(lab: Lab, flow: Flow, src_netns: str, endpoint: str | None = None) -> tuple[list[Hop], str]:
    """The hops from `src_netns` until delivery or a drop, and the verdict. A packet to a Service
    is DNAT'd in the first node namespace whose stack takes it (kube-proxy's nat-prerouting, before
    the route lookup) to `endpoint` (its IP; one of the Service's endpoints: kube-proxy picks at
    random, so the caller says which one); the hops after it carry the translated header."""
    hops = _walk(lab, flow, src_netns, endpoint)
    wg_ports = {w.listen_port for w in lab.wireguard.values()}
    nat = None
    for hop in hops:
        hop.sealed = hop.outer is not None and hop.outer.protocol == "UDP" and hop.outer.port in wg_ports
        if hop.action == "dnat":
            nat = hop.nat
        elif nat is not None:
            hop.nat = nat
    return hops, ("delivered" if hops[-1].action == "deliver" else "dropped")


def _dnat(lab: Lab, ns: str, cur: Flow, endpoint: str | None) -> tuple[Hop, Flow] | None:
    table = lab.services.get(ns)
    key = (cur.dst, cur.protocol.lower(), cur.port or 0)
    if not table or key not in table:
        return None
    svc = table[key]
    pick = next((e for e in svc.endpoints if e[0] == endpoint), None)
    names = ", ".join(f"{ip}:{port}" for ip, port, _ in svc.endpoints)
    if not svc.endpoints:
        what = ("reject-chain: rejected (ICMP port unreachable: connection refused)"
                if svc.verdict == "goto reject-chain" else "dropped")
        if svc.verdict:
            why = (f"kube-proxy: no endpoints: {cur.dst} . {cur.protocol.lower()} . {cur.port} "
                   f"in @no-endpoint-services -> {what}")
        else:
            why = f"kube-proxy: {svc.chain} has no endpoints"
        return Hop(ns, None, None, "drop", why), cur
    if pick is None:
        return Hop(ns, None, None, "drop", f"{endpoint} is not an endpoint of {svc.chain} ({names})"), cur
    natted = Flow(cur.src, pick[0], cur.protocol, pick[1])
    detail = (f"kube-proxy nat-prerouting: {cur.dst}:{cur.port} -> {svc.chain}, numgen random mod "
              f"{len(svc.endpoints)} of {{{names}}} -> {pick[2]}: dnat to {pick[0]}:{pick[1]}; "
              f"now {natted.src} > {natted.dst}:{natted.port}")
    return Hop(ns, None, None, "dnat", detail, nat=natted), natted


def _walk(lab: Lab, flow: Flow, src_netns: str, endpoint: str | None) -> list[Hop]:
    hops: list[Hop] = []
    ns, iif, cur, inner = src_netns, None, flow, None
    natted = False
    while len(hops) < MAX_HOPS:
        view = lab.views[ns]
        if inner is None and not natted and (iif or ns in lab.node_of_netns):   # prerouting, or output
            dnat = _dnat(lab, ns, cur, endpoint)
            if dnat is not None:
                hop, cur = dnat
                hop.in_, natted = iif, True
                hops.append(hop)
                if hop.action == "drop":
                    return hops
        found = lab.route_get(ns, cur.dst, cur.src if iif else None, iif)
        if found.local:
            wgv = lab.wireguard.get(ns)
            if inner is not None and wgv is not None and cur.protocol == "UDP" and cur.port == wgv.listen_port:
                hops.append(Hop(ns, iif, wgv.dev, "decap", f"WireGuard udp/{wgv.listen_port} from {cur.src}: "
                                f"decrypted, inner {inner.src} > {inner.dst}", outer=cur, sealed=True))
                ns, iif, cur, inner = ns, wgv.dev, inner, None
                continue
            vx = _vxlan_for(view, cur) if inner is not None else None
            if vx is not None:
                hops.append(Hop(ns, iif, vx.name, "decap", f"VXLAN VNI {vx.vxlan['vni']} from {cur.src}: "
                                f"inner {inner.src} > {inner.dst}", outer=cur))
                ns, iif, cur, inner = ns, vx.name, inner, None
                continue
            hops.append(Hop(ns, iif, None, "deliver", f"{cur.dst} is local: delivered", outer=_outer(cur, inner)))
            return hops
        if found.dev is None:
            hops.append(Hop(ns, iif, None, "drop", f"no route to {cur.dst}", outer=_outer(cur, inner)))
            return hops
        text = f"{cur.dst} via {found.gateway} dev {found.dev}" if found.gateway else f"{cur.dst} dev {found.dev}"
        # right after the DNAT the packet came in untranslated: watch it leave, translated
        hops.append(Hop(ns, iif, found.dev, "route", text, outer=_outer(cur, inner),
                        seen_on=found.dev if hops and hops[-1].action == "dnat" else None))
        dev = view.link(found.dev)
        nexthop = found.gateway or cur.dst
        if dev is not None and dev.kind == "vxlan" and dev.vxlan:
            mac = _neighbour(lab, view, found.dev, nexthop)
            entry = next((f for f in view.fdb if f.dev == dev.name and f.mac == mac and f.dst), None)
            if entry is None:
                hops.append(Hop(ns, found.dev, None, "drop", f"no fdb entry on {dev.name} for {mac}"))
                return hops
            outer = Flow(dev.vxlan["local"], entry.dst, "UDP", dev.vxlan["port"])
            under = lab.route_get(ns, outer.dst, None, None)
            hops.append(Hop(ns, dev.name, under.dev, "encap",
                            f"neigh {nexthop} lladdr {mac}, fdb {mac} dst {entry.dst}: VXLAN VNI "
                            f"{dev.vxlan['vni']} {outer.src} > {outer.dst} udp/{outer.port}", outer=outer,
                            seen_on=under.dev))
            inner, cur = cur, outer
            dev = view.link(under.dev or "")
            nexthop = under.gateway or outer.dst
        wgv = lab.wireguard.get(ns)
        if wgv is not None and dev is not None and dev.name == wgv.dev and inner is None:
            peer = wgv.peer_for(cur.dst)
            if peer is None or not peer[1]:
                hops.append(Hop(ns, dev.name, None, "drop", f"{dev.name}: no peer's AllowedIPs hold {cur.dst}"))
                return hops
            under = lab.route_get(ns, peer[1], None, None)
            outer = Flow(under.prefsrc or "", peer[1], "UDP", peer[2])
            hops.append(Hop(ns, dev.name, under.dev, "encap",
                            f"WireGuard peer {peer[0][:8]}... allowed-ips {','.join(peer[3])} endpoint "
                            f"{peer[1]}:{peer[2]}: {outer.src} > {outer.dst} udp/{outer.port} (encrypted)",
                            outer=outer, seen_on=under.dev, sealed=True))
            inner, cur = cur, outer
            dev = view.link(under.dev or "")
            nexthop = under.gateway or outer.dst
        if dev is None:
            hops.append(Hop(ns, found.dev, None, "drop", f"{found.dev} is not readable"))
            return hops
        arrived = _transmit(lab, hops, ns, dev, _neighbour(lab, view, dev.name, nexthop), _outer(cur, inner))
        if arrived is None:
            return hops
        ns, iif = arrived
    hops.append(Hop(ns, iif, None, "drop", f"more than {MAX_HOPS} hops: a loop?"))
    return hops


def apply_policy(lab: Lab, hops: list[Hop], verdict: str, policy: Policy) -> tuple[list[Hop], str]:
    """NetworkPolicy in the node namespaces: the source's egress where its node first forwards
    the packet (routed, or bridged through br_netfilter), the destination's ingress where its
    node does; a denial ends the path there."""
    seen: set[tuple[str, str]] = set()
    for n, hop in enumerate(hops):
        node = lab.node_of_netns.get(hop.netns)
        out = lab.views[hop.netns].link(hop.out or "")
        bridged = hop.action == "bridge" and out is not None and out.kind != "bridge"   # port to port
        forwards = hop.in_ is not None and hop.outer is None and (hop.action == "route" or bridged)
        if node is None or not forwards:
            continue
        for side in ("egress", "ingress"):
            answer = policy(node, side)
            if answer is None or (node, side) in seen:
                continue
            seen.add((node, side))
            allowed, why = answer
            if not allowed:
                hop.action, hop.out, hop.detail = "drop", None, f"NetworkPolicy {side}: {why}"
                return hops[:n + 1], "dropped"
            hop.detail += f"; NetworkPolicy {side}: {why}"
    return hops, verdict


def _outer(cur: Flow, inner: Flow | None) -> Flow | None:
    return None if inner is None else cur


def _vxlan_for(view: NetnsView, outer: Flow) -> LinkView | None:
    return next((link for link in view.links if link.vxlan and link.vxlan["port"] == outer.port), None)


def _neighbour(lab: Lab, view: NetnsView, dev: str, ip: str) -> str | None:
    """The MAC the kernel sends to: its neighbour entry, or the owner's address ARP would return."""
    entry = next((n for n in view.neighbours if n.dev == dev and n.ip == ip and n.mac), None)
    if entry is not None:
        return entry.mac
    owner = lab.owner_of_ip(ip)
    return owner[1].mac if owner else None


def _transmit(lab: Lab, hops: list[Hop], ns: str, dev: LinkView, mac: str | None,
              outer: Flow | None) -> tuple[str, str] | None:
    """Send a frame to `mac` out of `dev`: through veths, bridges and macvlan parents to the
    namespace whose stack takes it; returns (namespace, in-interface) there."""
    if dev.kind in ("macvlan", "ipvlan"):
        parent = lab.parent(ns, dev)
        if parent is None:
            hops.append(Hop(ns, dev.name, None, "drop", f"the {dev.kind} parent of {dev.name} is not in the lab",
                            outer=outer))
            return None
        sibling = lab.owner_of_mac(mac) if mac else None
        if sibling is not None and sibling[0] != ns and lab.parent(sibling[0], sibling[1]) == parent:
            hops.append(Hop(parent[0], None, parent[1].name, dev.kind,
                            f"bridge mode: {mac} is a child of {parent[1].name} too: handed over inside",
                            outer=outer, seen_on=None))
            return sibling[0], sibling[1].name
        hops.append(Hop(parent[0], None, parent[1].name, dev.kind,
                        f"child of {parent[1].name} (bridge mode): {mac} is not a child here, out on the wire",
                        outer=outer))
        ns, dev = parent
    for _ in range(MAX_HOPS):
        if dev.kind == "bridge":   # sent by this namespace's stack through its bridge
            view = lab.views[ns]
            port = _bridge_port(lab, view, dev.name, mac, ns)
            if port is None:
                hops.append(Hop(ns, dev.name, None, "drop", f"{dev.name}: no port leads to {mac}", outer=outer))
                return None
            hops.append(Hop(ns, dev.name, port.name, "bridge", _fdb_text(view, dev.name, port, mac), outer=outer))
            dev = port
            continue
        if dev.kind != "veth":
            hops.append(Hop(ns, None, dev.name, "drop", f"cannot follow a {dev.kind} link", outer=outer))
            return None
        far = lab.peer(ns, dev)
        if far is None:
            hops.append(Hop(ns, None, dev.name, "drop", f"the peer of {dev.name} is not in the lab", outer=outer))
            return None
        ns, link = far
        view = lab.views[ns]
        if link.master:
            bridge = view.link(link.master)
            if bridge is not None and mac == bridge.mac:
                hops.append(Hop(ns, link.name, bridge.name, "bridge",
                                f"{mac} is {bridge.name}'s own address: up to the stack", outer=outer))
                return ns, bridge.name
            port = _bridge_port(lab, view, link.master, mac, ns)
            if port is None:
                hops.append(Hop(ns, link.name, None, "drop", f"{link.master}: no port leads to {mac}", outer=outer))
                return None
            hops.append(Hop(ns, link.name, port.name, "bridge", _fdb_text(view, link.master, port, mac), outer=outer))
            dev = port
            continue
        if mac and mac != link.mac:
            child = lab.owner_of_mac(mac)
            if child and child[1].kind in ("macvlan", "ipvlan") and lab.parent(child[0], child[1]) == (ns, link):
                hops.append(Hop(ns, link.name, None, "macvlan", f"{mac} is a macvlan child of {link.name}: "
                                f"to {child[0]}", outer=outer))
                return child[0], child[1].name
        return ns, link.name
    return None


def _fdb_text(view: NetnsView, bridge: str, port: LinkView, mac: str | None) -> str:
    if any(f.dev == port.name and f.mac == mac for f in view.fdb):
        return f"{bridge} fdb {mac} dev {port.name}"
    return f"{bridge}: {mac} not learned yet, flooded; its port is {port.name}"


def _bridge_port(lab: Lab, view: NetnsView, bridge: str, mac: str | None, ns: str) -> LinkView | None:
    entry = next((f for f in view.fdb if f.mac == mac and not f.dst and view.link(f.dev) is not None
                  and view.link(f.dev).master == bridge), None)   # type: ignore[union-attr]
    if entry is not None:
        return view.link(entry.dev)
    owner = lab.owner_of_mac(mac) if mac else None
    for port in (link for link in view.links if link.master == bridge and link.kind == "veth"):
        far = lab.peer(ns, port)
        if far is None or owner is None:
            continue
        if far[0] == owner[0]:
            return port
        if owner[1].kind in ("macvlan", "ipvlan") and lab.parent(owner[0], owner[1]) == far:
            return port   # a child of the far end (another node's eth0)
    return None


# -- observing --------------------------------------------------------------------------

def layers(frame: bytes, vxlan_port: int | None) -> list[tuple[str, str, int, int | None, int | None, int | None]]:
    """(src, dst, proto, sport, dport, icmp id) of the IPv4 headers in an Ethernet frame,
    outermost first, looking inside VXLAN on `vxlan_port`."""
    out = []
    while len(frame) >= 34:
        ethertype = struct.unpack("!H", frame[12:14])[0]
        offset = 14
        if ethertype == 0x8100:
            ethertype, offset = struct.unpack("!H", frame[16:18])[0], 18
        if ethertype != 0x0800:
            break
        ip = frame[offset:]
        ihl = (ip[0] & 0x0F) * 4
        proto = ip[9]
        src, dst = str(IPv4Address(ip[12:16])), str(IPv4Address(ip[16:20]))
        l4 = ip[ihl:]
        sport = dport = ident = None
        if proto in (6, 17) and len(l4) >= 4:
            sport, dport = struct.unpack("!HH", l4[:4])
        elif proto == 1 and len(l4) >= 6:
            ident = struct.unpack("!H", l4[4:6])[0]
        out.append((src, dst, proto, sport, dport, ident))
        if proto == 17 and dport == vxlan_port and len(l4) >= 16:
            frame = l4[16:]
            continue
        break
    return out


PROTO = {"TCP": 6, "UDP": 17, "ICMP": 1}


def matches(layer_list, flow: Flow, probe: "Probe", outer: Flow | None, sealed: bool = False) -> bool:
    """The probe's packet (inner headers), in the outer header a hop carries it in, if any.
    Sealed (WireGuard): the inner packet is encrypted, so a packet of that outer header, sent while
    the probe crossed, is all the wire can show."""
    if sealed and outer is not None:
        return bool(layer_list) and layer_list[0][:2] == (outer.src, outer.dst) and layer_list[0][2] == 17 \
            and layer_list[0][4] == outer.port
    inner_ok = any(l[0] == flow.src and l[1] == flow.dst and l[2] == PROTO[flow.protocol] and
                   (l[5] == probe.ident if flow.protocol == "ICMP" else l[3] == probe.sport)
                   for l in layer_list)
    if not inner_ok:
        return False
    if outer is None:
        return layer_list[0][0] == flow.src and layer_list[0][1] == flow.dst
    return layer_list[0][0] == outer.src and layer_list[0][1] == outer.dst and layer_list[0][4] == outer.port


@dataclass(frozen=True)
class Probe:
    """What tells the real packet apart in the captures: its ICMP echo id, or its TCP/UDP source port."""

    ident: int               # the ICMP echo id
    sport: int               # the TCP/UDP source port


def new_probe() -> Probe:
    return Probe(random.randint(0x1000, 0xFFFF), random.randint(40000, 60999))


def send(enter, flow: Flow, probe: Probe, timeout: float = 1.0) -> bool:
    """Send the probe from inside the source namespace (entered by `enter()`, a context
    manager); True when an answer came back (echo reply, SYN-ACK or a UDP reply)."""
    with enter():
        if flow.protocol == "ICMP":
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        elif flow.protocol == "TCP":
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.settimeout(timeout)
        if flow.protocol == "ICMP":
            payload = b"netlab trace"
            header = struct.pack("!BBHHH", 8, 0, 0, probe.ident, 1)
            packet = header + payload
            packet = struct.pack("!BBHHH", 8, 0, _checksum(packet), probe.ident, 1) + payload
            sock.sendto(packet, (flow.dst, 0))
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    data, _ = sock.recvfrom(2048)
                except socket.timeout:
                    return False
                icmp = data[(data[0] & 0x0F) * 4:]
                if icmp[0] == 0 and struct.unpack("!H", icmp[4:6])[0] == probe.ident:
                    return True
            return False
        sock.bind((flow.src, probe.sport))
        if flow.protocol == "TCP":
            try:
                sock.connect((flow.dst, flow.port))
                return True
            except OSError:
                return False
        sock.sendto(b"netlab trace\n", (flow.dst, flow.port))
        try:
            sock.recvfrom(2048)
            return True
        except OSError:
            return False


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF

