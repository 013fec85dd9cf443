"""Cluster DNS records as RFC 1035 zone files: the Kubernetes DNS specification (kubernetes/dns
docs/specification.md, schema 1.0.1) for `dnsDomain`, where the spec leaves a choice as CoreDNS's
`kubernetes` plugin answers it. Pure: Services and pods in, zone file texts out; Knot DNS serves
them (it decides NXDOMAIN against NODATA, the AA flag, REFUSED outside its zones).

Every zone (spec 2.1 `<ttl>`: kubeadm's Corefile sets `ttl 30`)
- `$TTL 30`, every record with TTL 30.
- SOA `ns.dns.<zone>. hostmaster.<zone>. <serial> 7200 1800 86400 30`, the fields of CoreDNS's
  SOA (plugin/kubernetes tests: refresh 7200, retry 1800, expire 86400, minimum = the TTL), so a
  negative answer is cached 30 s too. The serial is the caller's: it should grow with every
  change (a secondary would compare it; `dig SOA` shows a learner which version is served), but
  Knot, loading whole files with no journal (core/knotconf.py), serves the rewritten file after
  `knotc zone-reload` whatever its serial says (tested).
- NS `ns.dns.<zone>.` and, in the cluster zone, `ns.dns.<zone>. A <kube-dns ClusterIP>` (the
  10th address of serviceSubnet, as kubeadm and core/clusterip.py place it): CoreDNS names its
  apex NS `ns.dns.<zone>` and answers it with the address of the Service it sits behind.
  The reverse zones use the same SOA names and NS as the cluster zone (an out-of-zone NS needs no
  glue); CoreDNS, authoritative for all of in-addr.arpa, names `ns.dns.in-addr.arpa.` there and
  answers an A record for it inside the reverse tree.

Records (section of the spec; every name lower-case and validated, see below)
- 2.2  `dns-version.<zone>. TXT "1.0.1"`.
- 2.3.1 ClusterIP Service: `<svc>.<ns>.svc.<zone>. A <cluster-ip>`, whether or not it has
  endpoints (CoreDNS answers it unless `ignore emptyservice`, which kubeadm does not set).
- 2.3.2 `_<port>._<proto>.<svc>.<ns>.svc.<zone>. SRV 0 100 <port> <svc>.<ns>.svc.<zone>.` for each
  named Service port (`<proto>` lower-case: tcp, udp, sctp); unnamed ports have none. Priority
  and weight are open in the spec: CoreDNS's 0 and 100 (100 split over the ClusterIPs: one here).
- 2.3.3 `<d>.<c>.<b>.<a>.in-addr.arpa. PTR <svc>.<ns>.svc.<zone>.` for each ClusterIP.
- 2.4.1 Headless Service: `<svc>.<ns>.svc.<zone>. A <ip>` per ready endpoint, and
  `<hostname>.<svc>.<ns>.svc.<zone>. A <ip>` per ready endpoint (several IPs under one hostname:
  one A each). With no ready endpoint the Service has no record at all, so its name is NXDOMAIN
  (the spec's "should be NXDOMAIN"; nothing sits below it either, so it is no empty
  non-terminal).
  _hostname_ (open in 2.1: "a unique, system-assigned identifier"): the endpoint's `hostname`, else
  the dashed IP `a-b-c-d`, as CoreDNS's endpointHostname (without `endpoint_pod_names`, which
  kubeadm's Corefile does not set).
  _ready_ (2.1): the caller's `DnsEndpoint.ready` (the EndpointSlice's ready condition, or true
  for a Service that publishes not-ready addresses); a not-ready endpoint gets no record at all.
- 2.4.2 `_<port>._<proto>.<svc>.<ns>.svc.<zone>. SRV 0 <w> <port> <hostname>.<svc>.<ns>.svc.<zone>.`
  for each named endpoint port and each ready endpoint (the endpoints' ports, i.e. targetPorts,
  as CoreDNS reads them from the EndpointSlice); one record per distinct target. Weight: 100
  split evenly over the RRset's records (CoreDNS divides 100 by the number of endpoint addresses
  it matched; the shares are equal either way), priority 0.
- 2.4.3 `PTR <hostname>.<svc>.<ns>.svc.<zone>.` for each ready endpoint's IP.
- 2.5  ExternalName Service: `<svc>.<ns>.svc.<zone>. CNAME <extname>.` and nothing else (no SRV,
  no endpoints: CoreDNS skips endpoint, port and protocol queries for it).
- 2.6  `<a>-<b>-<c>-<d>.<ns>.pod.<zone>. A <a>.<b>.<c>.<d>` for each pod given (the caller passes
  the pods that exist, with their namespace): CoreDNS's `pods verified`. The spec (deprecated
  record) and kubeadm's Corefile (`pods insecure`) answer any four numbers in any namespace
  without looking; a zone file lists names, it cannot hold every address of every namespace, and
  `verified` is the mode CoreDNS documents as safe (`insecure` is there for compatibility with
  kube-dns, and abusable with wildcard certificates). A pod IP in another namespace: NXDOMAIN.

Extensions (spec 3 allows records beyond the spec), as CoreDNS has them
- Endpoint names of ClusterIP Services too: `<hostname>.<svc>.<ns>.svc.<zone>. A <ip>` per ready
  endpoint (CoreDNS's findServices answers an endpoint label for any Service), and their PTR
  `<hostname>.<svc>.<ns>.svc.<zone>.` (CoreDNS's serviceRecordForIP looks at ClusterIPs first,
  then at every Service's endpoints): so the PTR of a pod behind a Service resolves forward.
  An IP behind several Services has one PTR per Service. An IP that is a ClusterIP gets only the
  Service's PTR (ClusterIPs are looked at first). A pod that is no ready endpoint has no PTR
  (CoreDNS indexes pods for reverse lookups nowhere).

NXDOMAIN and NODATA (the spec says only 2.4.1; CoreDNS's handler tests for the rest)
- A name that exists with other types (AAAA of a Service, an A query of an SRV name): NODATA.
- Empty non-terminals `svc.<zone>`, `<ns>.svc.<zone>`, `pod.<zone>`, `<ns>.pod.<zone>`,
  `_<port>._<proto>` parents: NODATA, as CoreDNS answers them; they exist as soon as a record
  sits below them. A namespace with no Service (resp. no pod) has no `<ns>.svc.<zone>` (resp.
  `<ns>.pod.<zone>`): NXDOMAIN, where CoreDNS answers NODATA for every namespace it knows.
- Anything else in the zone: NXDOMAIN. Names outside every zone: REFUSED (Knot, immediately).

Reverse zones (in-addr.arpa): the octet-aligned zones that tile serviceSubnet and podSubnet
exactly: a prefix rounded up to a multiple of 8 (a /20 is 16 /24 zones, kubeadm's default
10.96.0.0/12 is 16 /16 zones, at most 128 zones for a /9 or /17); a subnet smaller than a /24
gets its /24 (the smallest octet-aligned zone; RFC 2317's classless delegation needs a parent,
there is none). The server is thus authoritative for the cluster's own addresses only: a PTR
query for anything else (the underlay, the nodes, the host) is REFUSED, like a name outside the
cluster zone, rather than given an authoritative NXDOMAIN we have no right to. CoreDNS claims all
of in-addr.arpa and falls through to its upstream for what it does not know; a lab has no
upstream. A PTR whose IP lies in none of these zones (a host-network endpoint's node IP) is left
out.

Names: namespaces, Service names, hostnames, port names and every label of the domain and of an
ExternalName are checked against DNS-1123 labels (lower-case letters, digits, inner hyphens, at
most 63 characters) and names against 253 characters; anything else raises ValueError. The
loader has validated them already; the check keeps a zone file free of anything that could
change its meaning (spaces, `;`, `$`, parentheses, backslashes, quotes).

Output is deterministic: records deduplicated and sorted (owner in DNS canonical order with
numeric labels as numbers, then SOA, NS, the other types by name, then the data), zones
in a fixed order (the cluster zone, then the reverse zones by address), so the same lab gives
byte-identical files.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Iterable, Mapping

SCHEMA_VERSION = "1.0.1"
TTL = 30
SOA_TIMERS = (7200, 1800, 86400, TTL)   # refresh, retry, expire, minimum (negative-cache TTL)
PROTOCOLS = ("TCP", "UDP", "SCTP")

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")


@dataclass(frozen=True)
class DnsPort:
    """A Service or endpoint port as the zone needs it: its name (the SRV owner), protocol and number."""

    name: str            # "" for an unnamed port (no SRV)
    protocol: str        # "TCP", "UDP" or "SCTP"
    port: int


@dataclass(frozen=True)
class DnsEndpoint:
    """One endpoint of a Service: its IP, its hostname (None: named by its dashed IP), whether it is
    ready, and its node."""

    ip: IPv4Address
    hostname: str | None
    ready: bool
    node: str = ""


@dataclass(frozen=True)
class DnsService:
    """A Service as the zones need it: its ClusterIP (None: headless), ports and endpoints, or its
    ExternalName."""

    name: str
    namespace: str
    cluster_ip: IPv4Address | None          # None: headless
    ports: tuple[DnsPort, ...]              # Service ports (SRV for ClusterIP Services)
    endpoints: tuple[DnsEndpoint, ...]      # ready or not (not-ready ones get no records)
    endpoint_ports: tuple[DnsPort, ...] = ()   # headless SRV: the endpoints' ports
    external_name: str | None = None


@dataclass(frozen=True)
class DnsPod:
    """A pod that exists, for its `<a-b-c-d>.<ns>.pod.<zone>` A record."""

    name: str
    namespace: str
    ip: IPv4Address


@dataclass(frozen=True)
class Zones:
    """The zone files generated: origin (no trailing dot) -> zone file text, the cluster zone first."""

    files: Mapping[str, str]     # zone origin (no trailing dot) -> zone file text

    @property
    def origins(self) -> tuple[str, ...]:
        return tuple(self.files)


@dataclass(frozen=True)
class _Record:
    """One resource record of a zone: owner, type and data, and the key its data sorts by."""

    owner: str                   # absolute, with the trailing dot
    rtype: str
    rdata: str
    order: tuple                 # how the data sorts (addresses as numbers)


def check_label(label: str, what: str) -> str:
    if not _LABEL.match(label):
        raise ValueError(f"{what} {label!r} is not a DNS-1123 label "
                         "(lower-case letters, digits and inner '-', at most 63 characters)")
    return label


def check_domain(name: str, what: str) -> str:
    """A lower-case DNS name without its trailing dot, every label checked."""
    bare = name[:-1] if name.endswith(".") else name
    if not bare or len(bare) > 253:
        raise ValueError(f"{what} {name!r} must have 1 to 253 characters")
    for label in bare.split("."):
        check_label(label, f"a label of {what}")
    return bare


def _fqdn(*labels: str) -> str:
    name = ".".join(labels) + "."
    if len(name) > 254:
        raise ValueError(f"the name {name} is longer than 253 characters")
    return name


def dashed(ip: IPv4Address) -> str:
    return str(ip).replace(".", "-")


def reverse_networks(subnet: IPv4Network) -> list[IPv4Network]:
    """The octet-aligned networks whose in-addr.arpa zones cover `subnet` (see the docstring)."""
    if subnet.prefixlen > 24:
        return [subnet.supernet(new_prefix=24)]
    aligned = max(8, -(-subnet.prefixlen // 8) * 8)
    return list(subnet.subnets(new_prefix=aligned))


def reverse_origin(net: IPv4Network) -> str:
    octets = str(net.network_address).split(".")[: net.prefixlen // 8]
    return ".".join(reversed(octets)) + ".in-addr.arpa"


def _ptr_owner(ip: IPv4Address) -> str:
    return ".".join(reversed(str(ip).split("."))) + ".in-addr.arpa."


def _a(owner: str, ip: IPv4Address) -> _Record:
    return _Record(owner, "A", str(ip), (int(ip),))


def _name_record(owner: str, rtype: str, target: str) -> _Record:
    return _Record(owner, rtype, target, (target,))


def _srv(owner: str, weight: int, port: int, target: str) -> _Record:
    return _Record(owner, "SRV", f"0 {weight} {port} {target}", (0, weight, port, target))


def _srv_owner(port: DnsPort, service_name: str) -> str:
    if port.protocol not in PROTOCOLS:
        raise ValueError(f"port {port.name!r}: protocol {port.protocol!r} is not one of {PROTOCOLS}")
    if not 1 <= port.port <= 65535:
        raise ValueError(f"port {port.name!r}: {port.port} is not a port number")
    check_label(port.name, "a port name")
    return f"_{port.name}._{port.protocol.lower()}.{service_name}"


def _service_records(svc: DnsService, domain: str, cluster_ips: set[IPv4Address],
                     forward: set[_Record], ptrs: set[_Record]) -> None:
    ns = check_label(svc.namespace, "a namespace")
    name = _fqdn(check_label(svc.name, "a Service name"), ns, "svc", domain)
    if svc.external_name is not None:                                # 2.5
        forward.add(_name_record(name, "CNAME", _fqdn(check_domain(svc.external_name, "an externalName"))))
        return
    ready = [ep for ep in svc.endpoints if ep.ready]
    targets: list[tuple[str, IPv4Address]] = []
    for ep in ready:
        host = check_label(ep.hostname, "an endpoint hostname") if ep.hostname else dashed(ep.ip)
        target = _fqdn(host, svc.name, ns, "svc", domain)
        targets.append((target, ep.ip))
        forward.add(_a(target, ep.ip))                               # 2.4.1 (and extension)
        if ep.ip not in cluster_ips:
            ptrs.add(_name_record(_ptr_owner(ep.ip), "PTR", target))  # 2.4.3 (and extension)
    if svc.cluster_ip is not None:
        forward.add(_a(name, svc.cluster_ip))                        # 2.3.1
        ptrs.add(_name_record(_ptr_owner(svc.cluster_ip), "PTR", name))   # 2.3.3
        for port in svc.ports:                                       # 2.3.2
            if port.name:
                forward.add(_srv(_srv_owner(port, name), 100, port.port, name))
        return
    for _target, ip in targets:                                      # 2.4.1
        forward.add(_a(name, ip))
    distinct = sorted({target for target, _ip in targets})
    for port in svc.endpoint_ports:                                  # 2.4.2
        if port.name and distinct:
            weight = max(1, 100 // len(distinct))
            for target in distinct:
                forward.add(_srv(_srv_owner(port, name), weight, port.port, target))


def _label_order(label: str) -> tuple:
    return (0, int(label), "") if label.isdigit() else (1, 0, label)


def _sort_key(record: _Record) -> tuple:
    owner = tuple(_label_order(label) for label in reversed(record.owner.rstrip(".").split(".")))
    rank = {"SOA": 0, "NS": 1}.get(record.rtype, 2)
    return (owner, rank, record.rtype, record.order)


def _zone_text(origin: str, domain: str, serial: int, records: Iterable[_Record]) -> str:
    apex = origin + "."
    head = [
        _Record(apex, "SOA", f"ns.dns.{domain}. hostmaster.{domain}. {serial} "
                + " ".join(str(t) for t in SOA_TIMERS), ()),
        _name_record(apex, "NS", f"ns.dns.{domain}."),
    ]
    lines = [
        f"; {origin}: Kubernetes DNS records (schema {SCHEMA_VERSION}) for {domain}, written by netlab",
        f"$ORIGIN {apex}",
        f"$TTL {TTL}",
    ]
    lines += [f"{r.owner} {TTL} IN {r.rtype} {r.rdata}" for r in head + sorted(set(records), key=_sort_key)]
    return "\n".join(lines) + "\n"


def zones(domain: str, pod_subnet: IPv4Network, service_subnet: IPv4Network,
          services: Iterable[DnsService], pods: Iterable[DnsPod], serial: int) -> Zones:
    """The cluster zone and the reverse zones of both subnets, origin -> zone file text."""
    domain = check_domain(domain, "the cluster domain")
    if not 0 <= serial <= 0xFFFFFFFF:
        raise ValueError(f"SOA serial {serial} is not a 32-bit unsigned number")
    services = tuple(services)
    keys = [(svc.namespace, svc.name) for svc in services]
    if len(set(keys)) != len(keys):
        raise ValueError("two Services with the same namespace and name")
    forward: set[_Record] = {
        _Record(_fqdn("dns-version", domain), "TXT", f'"{SCHEMA_VERSION}"', ()),      # 2.2
        _a(_fqdn("ns", "dns", domain), service_subnet.network_address + 10),
    }
    ptrs: set[_Record] = set()
    cluster_ips = {svc.cluster_ip for svc in services
                   if svc.cluster_ip is not None and svc.external_name is None}
    for svc in services:
        _service_records(svc, domain, cluster_ips, forward, ptrs)
    for pod in pods:                                                  # 2.6
        ns = check_label(pod.namespace, "a namespace")
        forward.add(_a(_fqdn(dashed(pod.ip), ns, "pod", domain), pod.ip))

    networks = sorted({net for subnet in (service_subnet, pod_subnet) for net in reverse_networks(subnet)})
    reverse: dict[IPv4Network, list[_Record]] = {net: [] for net in networks}
    for record in ptrs:
        ip = IPv4Address(".".join(reversed(record.owner.split(".")[:4])))
        for net in networks:
            if ip in net:
                reverse[net].append(record)
                break
    files = {domain: _zone_text(domain, domain, serial, forward)}
    for net in networks:
        origin = reverse_origin(net)
        files[origin] = _zone_text(origin, domain, serial, reverse[net])
    return Zones(files=files)
