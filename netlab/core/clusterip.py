"""ClusterIP and NodePort allocation, pure, as kube-apiserver does it (KEP-3070, KEP-3668).

The service range is a bitmap over serviceSubnet without its network and broadcast
addresses (index 0 = .1). KEP-3070 splits it in two bands: the lower `offset` addresses
(offset = min(max(16, size/16), 256)) are meant for static (pinned) addresses; dynamic
allocation starts at a random index of the upper band, scans forward with wrap-around,
and falls back to the lower band only when the upper one is full. netlab draws the start
from a hash of the Service's name, so the same file always gets the same addresses.
`default/kubernetes` gets index 0 (.1); kubeadm's cluster DNS address (.10) is never
handed out dynamically. NodePorts (KEP-3668) work alike over 30000-32767 with
offset = min(max(16, size/32), 128).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from ..model.service import Service, ServiceType

NODE_PORT_RANGE = (30000, 32767)
KUBERNETES_SERVICE = "default/kubernetes"


def has_services(lab) -> bool:
    """The lab declares Services (default/kubernetes alone, with no endpoints, does not count)."""
    return any(svc.key != KUBERNETES_SERVICE for svc in lab.services)


class ServiceAllocationError(Exception):
    """A pinned address/port conflicts, or the range is exhausted; `subject` names the Service."""

    def __init__(self, subject: str, field: str, message: str, hint: str = ""):
        super().__init__(message)
        self.subject, self.field, self.message, self.hint = subject, field, message, hint


def band_offset(size: int, lo: int = 16, hi: int = 256, step: int = 16) -> int:
    """KEP-3070's calculateRangeOffset: the size of the static band."""
    if size < lo:
        return 0
    return min(max(lo, size // step), hi)


def _start(key: str, what: str, span: int) -> int:
    digest = hashlib.sha256(f"{what}/{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % span


def _dynamic(key: str, what: str, taken: set[int], count: int, offset: int) -> int | None:
    """First free index scanning from a hashed start in the upper band, then the lower band."""
    for lo, hi in ((offset, count), (0, offset)):
        span = hi - lo
        if span <= 0:
            continue
        start = _start(key, what, span)
        for step in range(span):
            index = lo + (start + step) % span
            if index not in taken:
                return index
    return None


@dataclass(frozen=True)
class ServiceAllocation:
    """What allocate() hands out: the ClusterIP of each proxied Service and the nodePort of each port
    of a NodePort Service."""

    cluster_ips: dict[str, IPv4Address]            # service key → ClusterIP (proxied Services only)
    node_ports: dict[tuple[str, int], int]         # (service key, port index) → nodePort


def allocate(services: tuple[Service, ...], subnet: IPv4Network) -> ServiceAllocation:
    """ClusterIPs and NodePorts of every Service, pinned ones first, then dynamic in file order."""
    base = subnet.network_address + 1
    count = subnet.num_addresses - 2
    offset = band_offset(subnet.num_addresses)
    dns_index = 9
    taken: dict[int, str] = {}
    ips: dict[str, IPv4Address] = {}
    proxied = [s for s in services if s.proxied]
    for svc in proxied:
        if svc.key == KUBERNETES_SERVICE and svc.cluster_ip is None:
            taken[0] = svc.key
            ips[svc.key] = base
    for svc in proxied:
        ip = svc.cluster_ip
        if ip is None:
            continue
        index = int(ip) - int(base)
        if not 0 <= index < count:
            raise ServiceAllocationError(svc.key, "spec.clusterIP", f"clusterIP {ip} is not in serviceSubnet "
                                         f"{subnet} (usable {base}-{base + count - 1})", "pin an address in range "
                                         "or leave clusterIP out")
        if index == 0 and svc.key != KUBERNETES_SERVICE:
            raise ServiceAllocationError(svc.key, "spec.clusterIP", f"clusterIP {ip} belongs to the "
                                         "default/kubernetes Service", "pin another address")
        if index in taken:
            raise ServiceAllocationError(svc.key, "spec.clusterIP", f"clusterIP {ip} is already allocated to "
                                         f"Service {taken[index]}", "pin another address, or leave clusterIP out")
        taken[index] = svc.key
        ips[svc.key] = ip
    reserved = set(taken) | {dns_index}
    for svc in proxied:
        if svc.key in ips:
            continue
        index = _dynamic(svc.key, "clusterIP", reserved, count, offset)
        if index is None:
            raise ServiceAllocationError(svc.key, "spec", f"serviceSubnet {subnet} has no address left",
                                         "use a larger serviceSubnet, or fewer Services")
        reserved.add(index)
        ips[svc.key] = base + index
    return ServiceAllocation(ips, _node_ports(proxied))


def _node_ports(services: list[Service]) -> dict[tuple[str, int], int]:
    lo, hi = NODE_PORT_RANGE
    count = hi - lo + 1
    offset = band_offset(count, hi=128, step=32)
    taken: dict[int, str] = {}
    out: dict[tuple[str, int], int] = {}
    nodeport_services = [s for s in services if s.type is ServiceType.NODE_PORT]
    for svc in nodeport_services:
        for i, port in enumerate(svc.ports):
            if port.node_port is None:
                continue
            if port.node_port - lo in taken:
                raise ServiceAllocationError(svc.key, f"spec.ports[{i}].nodePort", f"nodePort {port.node_port} is "
                                             f"already allocated to Service {taken[port.node_port - lo]}",
                                             "pick another nodePort, or leave it out")
            taken[port.node_port - lo] = svc.key
            out[(svc.key, i)] = port.node_port
    for svc in nodeport_services:
        for i, port in enumerate(svc.ports):
            if (svc.key, i) in out:
                continue
            index = _dynamic(f"{svc.key}/{i}", "nodePort", set(taken), count, offset)
            if index is None:
                raise ServiceAllocationError(svc.key, f"spec.ports[{i}].nodePort", "no nodePort left in "
                                             f"{lo}-{hi}", "use fewer NodePort Services")
            taken[index] = svc.key
            out[(svc.key, i)] = lo + index
    return out
