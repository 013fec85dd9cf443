"""flannel's host-gw backend (pkg/backend/hostgw): a route per remote node, no tunnel."""
from __future__ import annotations

from ..ipam import Allocation, NodeAlloc
from ...model.lab import LabFile
from ...names import NODE_UPLINK
from .kind import BackendKind, L2Need
from ..steps import Route, Step


def route_to(remote: NodeAlloc) -> Route:
    return Route(remote.pod_cidr, NODE_UPLINK, via=remote.underlay_ip)


def node_steps(lab: LabFile, alloc: Allocation, node: NodeAlloc) -> list[Step]:
    return [route_to(remote) for remote in alloc.nodes.values() if remote.name != node.name]


KIND = BackendKind("host-gw", node_steps, flannel=True, l2=L2Need(
    "host-gw needs L2 adjacency", "use backend vxlan, or vxlan with directRouting: true"))
