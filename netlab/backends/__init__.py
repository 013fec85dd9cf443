"""Backends: each contributes the steps that join one node's pods to the other nodes."""
from __future__ import annotations

from ..ipam import Allocation, NodeAlloc
from ..model import Backend, LabFile
from ..steps import Step
from . import hostgw, vxlan


def node_steps(lab: LabFile, alloc: Allocation, node: NodeAlloc) -> list[Step]:
    if lab.lab.backend is Backend.VXLAN:
        return vxlan.node_steps(lab, alloc, node)
    if lab.lab.backend is Backend.HOST_GW:
        return hostgw.node_steps(lab, alloc, node)
    raise ValueError(f"no backend module for {lab.lab.backend}")


def required_link_kinds(lab: LabFile) -> tuple[str, ...]:
    """Kernel link kinds the backend needs, checked before anything is built."""
    kinds = ("veth", "bridge")
    if lab.lab.backend is Backend.VXLAN:
        kinds += ("vxlan",)
    return kinds
