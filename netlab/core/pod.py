"""A pod's own address steps, the same under every backend."""
from __future__ import annotations

from ipaddress import IPv4Interface

from ..model.lab import Pod
from ..names import POD_IF
from .ipam import Allocation
from .steps import Addr, Note, Step, Up


def pod_address(alloc: Allocation, pod: Pod) -> list[Step]:
    """The pod's address on eth0 with its node's prefix, and the link up; every backend's pods."""
    node = alloc.nodes[pod.node]
    return [
        Addr(POD_IF, IPv4Interface(f"{alloc.pod_ips[pod.key]}/{node.pod_cidr.prefixlen}")),
        Up(POD_IF),
        Note(f"ip route {node.pod_cidr} dev {POD_IF} scope link: the kernel adds it with the address"),
    ]
