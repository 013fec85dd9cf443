"""Backends: each contributes the steps that join one node's pods to the other nodes.

macvlan and ipvlan also shape the pods: a pod's eth0 is a child of its node's uplink, so
there is no cni0 and no veth (`pods_on_underlay`, `pod_steps`).
"""
from __future__ import annotations

from types import ModuleType

from ..ipam import Allocation, NodeAlloc
from ...model.lab import Backend, LabFile, Pod
from ..steps import Step
from . import hostgw, ipip, ipvlan, macvlan, vxlan

MODULES: dict[Backend, ModuleType] = {
    Backend.VXLAN: vxlan, Backend.HOST_GW: hostgw, Backend.MACVLAN: macvlan,
    Backend.IPIP: ipip, Backend.IPVLAN: ipvlan,
}
BACKEND_LINK_KINDS: dict[Backend, tuple[str, ...]] = {
    Backend.VXLAN: ("vxlan",), Backend.HOST_GW: (), Backend.MACVLAN: ("macvlan",),
    Backend.IPIP: ("ipip",), Backend.IPVLAN: ("ipvlan",),
}
KERNEL_OPTIONS = {   # link kind -> (kernel config option, module)
    "veth": ("CONFIG_VETH", "veth"), "bridge": ("CONFIG_BRIDGE", "bridge"),
    "vxlan": ("CONFIG_VXLAN", "vxlan"), "macvlan": ("CONFIG_MACVLAN", "macvlan"),
    "ipip": ("CONFIG_NET_IPIP", "ipip"), "ipvlan": ("CONFIG_IPVLAN", "ipvlan"),
}


def node_steps(lab: LabFile, alloc: Allocation, node: NodeAlloc) -> list[Step]:
    return MODULES[lab.lab.backend].node_steps(lab, alloc, node)


def pods_on_underlay(lab: LabFile) -> bool:
    """True when pods hang off their node's uplink (macvlan, ipvlan) instead of a cni0 bridge."""
    return lab.lab.backend in (Backend.MACVLAN, Backend.IPVLAN)


def pod_steps(lab: LabFile, alloc: Allocation, pod: Pod) -> list[Step]:
    """A pod's eth0, address and routes, for the backends where pods sit on the underlay."""
    return MODULES[lab.lab.backend].pod_steps(lab, alloc, pod)


def required_link_kinds(lab: LabFile) -> tuple[str, ...]:
    """Kernel link kinds the lab needs, checked before anything is built (the VPC is bridges)."""
    return ("veth", "bridge") + BACKEND_LINK_KINDS[lab.lab.backend]


def kernel_option(kind: str) -> str:
    """How to name a missing link kind to the user: its kernel option and module."""
    option, module = KERNEL_OPTIONS.get(kind, (f"CONFIG_{kind.upper()}", kind))
    return f"{kind} ({option}, module {module})"
