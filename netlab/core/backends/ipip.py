"""Calico's IPIP mode: tunl0 (MTU 1480) and a route per remote node's block,
`<remote block> via <remote node IP> dev tunl0 onlink`. tunl0 has no fixed remote, so each
route's gateway is the outer destination; the outer packet is routed like any other, so
IPIP crosses the VPC router between racks (Calico's reason for it).

Deviation from Calico, on purpose: pods stay on the CNI bridge plugin (cni0 + veth, MTU
1480) as under flannel, instead of Calico's per-pod /32 routes to caliXXXX veths with
proxy_arp and a default via 169.254.1.1. Only the node-to-node path is Calico's, so the pod
side and NetworkPolicy work the same on every routed backend.
"""
from __future__ import annotations

from ipaddress import IPv4Interface

from ..ipam import Allocation, NodeAlloc
from ...model.lab import LabFile
from .kind import BackendKind
from ..steps import Addr, Ipip, Route, Step, Up

DEVICE = "tunl0"
OVERHEAD = 20            # the outer IPv4 header


def node_steps(lab: LabFile, alloc: Allocation, node: NodeAlloc) -> list[Step]:
    steps: list[Step] = [
        Ipip(DEVICE, lab.lab.underlay_mtu - OVERHEAD),
        Addr(DEVICE, IPv4Interface(f"{node.vtep_ip}/32")),   # Calico: the block's first address
        Up(DEVICE),
    ]
    steps += [Route(remote.pod_cidr, DEVICE, via=remote.underlay_ip, onlink=True)
              for remote in alloc.nodes.values() if remote.name != node.name]
    return steps


KIND = BackendKind("ipip", node_steps, link_kinds=("ipip",), overhead=OVERHEAD)
