"""Address allocation, pure: node /24s as kube-controller-manager, pod IPs as host-local.

Node CIDRs follow the range allocator (pkg/controller/nodeipam/ipam/cidrset): blocks of
podSubnet with mask 24 scanned from index 0, blocks overlapping serviceSubnet marked
occupied, pinned podCIDRs (Node.spec.podCIDR) occupied before anything is handed out.
Pod IPs follow host-local: .1 is the gateway on cni0, pods get .2 upward, up to the
last address before broadcast.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from ..model.lab import LabFile

NODE_MASK = 24
RACK_MASK = 22          # each rack is its own underlay segment inside the lab's underlay subnet
NODE_HOST_OFFSET = 10   # node underlay IPs start at .10 of their segment; .1 is the VPC router
DEFAULT_RACK = "default"


class AllocationError(Exception):
    """The lab asks for more than its subnets hold; `subject` names the node or pod."""

    def __init__(self, kind: str, subject: str, message: str, hint: str = ""):
        super().__init__(message)
        self.kind, self.subject, self.message, self.hint = kind, subject, message, hint


@dataclass(frozen=True)
class Rack:
    """A rack: its name, its index in the lab, and its own underlay segment (the VPC router takes the
    first address)."""

    name: str
    index: int
    segment: IPv4Network

    @property
    def router_ip(self) -> IPv4Address:
        return self.segment.network_address + 1


@dataclass(frozen=True)
class NodeAlloc:
    """What one node is given: its index, its pod CIDR, its rack and its underlay IP."""

    name: str
    index: int
    pod_cidr: IPv4Network
    rack: Rack
    underlay_ip: IPv4Address

    @property
    def gateway(self) -> IPv4Address:
        """cni0's address: the first address of the node CIDR."""
        return self.pod_cidr.network_address + 1

    @property
    def vtep_ip(self) -> IPv4Address:
        """flannel.1's address: the node CIDR's network address, as a /32."""
        return self.pod_cidr.network_address


@dataclass(frozen=True)
class Allocation:
    """The lab's addresses: each node's allocation, each pod's IP, and the racks."""

    nodes: dict[str, NodeAlloc]
    pod_ips: dict[str, IPv4Address]  # pod key (namespace/name) -> IP
    racks: tuple[Rack, ...]


def node_blocks(pod_subnet: IPv4Network) -> int:
    return 1 << max(0, NODE_MASK - pod_subnet.prefixlen)


def pods_per_node(pod_cidr: IPv4Network) -> int:
    return pod_cidr.num_addresses - 3  # network, gateway (.1), broadcast


def allocate_node_cidrs(lab: LabFile) -> dict[str, IPv4Network]:
    net = lab.networking
    if net.pod_subnet.prefixlen > NODE_MASK:
        raise AllocationError("lab", "", f"podSubnet {net.pod_subnet} is smaller than a node's /{NODE_MASK}",
                              f"use a podSubnet with a prefix of /{NODE_MASK} or shorter")
    base = int(net.pod_subnet.network_address)
    size = 1 << (32 - NODE_MASK)
    total = node_blocks(net.pod_subnet)

    def block(index: int) -> IPv4Network:
        return IPv4Network((base + index * size, NODE_MASK))

    used: set[int] = set()
    service = net.service_subnet
    if service.overlaps(net.pod_subnet):
        first = max(int(service.network_address), base)
        last = min(int(service.broadcast_address), base + total * size - 1)
        used.update(range((first - base) // size, (last - base) // size + 1))
    cidrs: dict[str, IPv4Network] = {}
    for node in lab.lab.nodes:
        if node.pod_cidr is not None:
            index = (int(node.pod_cidr.network_address) - base) // size
            cidrs[node.name] = node.pod_cidr
            used.add(index)
    candidate = 0
    for node in lab.lab.nodes:
        if node.pod_cidr is not None:
            continue
        while candidate < total and candidate in used:
            candidate += 1
        if candidate >= total:
            free = total - len(used)
            raise AllocationError(
                "node", node.name,
                f"no /{NODE_MASK} left in podSubnet {net.pod_subnet} for node {node.name!r} "
                f"({total} blocks, {free} free after serviceSubnet and pinned CIDRs)",
                "use a larger podSubnet or fewer nodes")
        cidrs[node.name] = block(candidate)
        used.add(candidate)
    return cidrs


def allocate_racks(lab: LabFile) -> tuple[Rack, ...]:
    names: list[str] = []
    for node in lab.lab.nodes:
        rack = node.rack or DEFAULT_RACK
        if rack not in names:
            names.append(rack)
    segments = list(lab.lab.underlay_subnet.subnets(new_prefix=RACK_MASK)) \
        if lab.lab.underlay_subnet.prefixlen <= RACK_MASK else [lab.lab.underlay_subnet]
    if len(names) > len(segments):
        raise AllocationError("lab", "", f"{len(names)} racks do not fit in underlay subnet "
                              f"{lab.lab.underlay_subnet} (/{RACK_MASK} each)",
                              "use a larger spec.underlay.subnet or fewer racks")
    return tuple(Rack(name, i, segments[i]) for i, name in enumerate(names))


def allocate_pod_ips(lab: LabFile, cidrs: dict[str, IPv4Network]) -> dict[str, IPv4Address]:
    pinned: dict[str, set[int]] = {name: set() for name in cidrs}
    for pod in lab.pods:
        if pod.pinned_ip is not None:
            pinned[pod.node].add(int(pod.pinned_ip))
    next_free = {name: int(cidr.network_address) + 2 for name, cidr in cidrs.items()}
    ips: dict[str, IPv4Address] = {}
    for pod in lab.pods:
        if pod.pinned_ip is not None:
            ips[pod.key] = pod.pinned_ip
            continue
        cidr = cidrs[pod.node]
        candidate = next_free[pod.node]
        while candidate in pinned[pod.node]:
            candidate += 1
        if candidate >= int(cidr.broadcast_address):
            raise AllocationError("pod", pod.key,
                                  f"node {pod.node!r} has no address left in {cidr} for pod {pod.key} "
                                  f"(a /{cidr.prefixlen} holds {pods_per_node(cidr)} pods)",
                                  "spread the pods over more nodes")
        ips[pod.key] = IPv4Address(candidate)
        next_free[pod.node] = candidate + 1
    return ips


def allocate(lab: LabFile) -> Allocation:
    cidrs = allocate_node_cidrs(lab)
    racks = allocate_racks(lab)
    by_name = {rack.name: rack for rack in racks}
    per_rack: dict[str, int] = {}
    nodes: dict[str, NodeAlloc] = {}
    for index, node in enumerate(lab.lab.nodes):
        rack = by_name[node.rack or DEFAULT_RACK]
        position = per_rack.get(rack.name, 0)
        per_rack[rack.name] = position + 1
        host = NODE_HOST_OFFSET + position
        if host >= rack.segment.num_addresses - 1:
            raise AllocationError("node", node.name, f"rack {rack.name!r} segment {rack.segment} is full",
                                  "use fewer nodes per rack")
        nodes[node.name] = NodeAlloc(node.name, index, cidrs[node.name], rack,
                                     rack.segment.network_address + host)
    return Allocation(nodes, allocate_pod_ips(lab, cidrs), racks)
