"""ipvlan: each pod's eth0 is an ipvlan child of its node's uplink, sharing the uplink's MAC.

l2 (the CNI ipvlan plugin's default): as macvlan, pods are neighbours on the underlay LAN
and route the whole podSubnet on-link; ARP answers carry the node's MAC and the parent
hands frames to a child by destination IP. l3: children do no ARP; a pod's packets are
routed by its node's stack (`default dev eth0` in the pod), so nodes hold host-gw routes
to each other's /24s, and still need L2 adjacency.

As with macvlan the parent cannot reach its children; each node gets an ipvlan "shim"
child holding its gateway address (.1) through which it reaches its pods (see macvlan.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Interface, IPv4Network

from ..ipam import Allocation, NodeAlloc
from ...model.checks import MISSING, DocChecker
from ...model.lab import LabFile, Pod
from ...names import NODE_UPLINK, POD_IF, node_netns, pod_netns
from ..pod import pod_address
from .kind import BackendKind, L2Need, Options
from ..steps import Addr, Ipvlan, Route, Step, Up
from . import hostgw, macvlan

SHIM = "ipvlan-shim"


class IpvlanMode(StrEnum):
    """ipvlan's modes as the CNI ipvlan plugin names them (l2 is the plugin's default)."""

    L2 = "l2"
    L3 = "l3"


@dataclass(frozen=True)
class IpvlanOptions:
    """The lab file's spec.ipvlan."""

    mode: IpvlanMode = IpvlanMode.L2


def parse_options(raw: dict, check: DocChecker, path: str) -> IpvlanOptions:
    text = check.string(raw.get("mode", MISSING), f"{path}.mode")
    if text is None:
        return IpvlanOptions()
    try:
        return IpvlanOptions(IpvlanMode(text))
    except ValueError:
        check.error(f"{path}.mode", f"unknown ipvlan mode {text!r}",
                    "use one of: " + ", ".join(m.value for m in IpvlanMode))
        return IpvlanOptions()


def node_steps(lab: LabFile, alloc: Allocation, node: NodeAlloc) -> list[Step]:
    mode = lab.lab.options.mode
    steps: list[Step] = [
        Ipvlan(SHIM, NODE_UPLINK, mode.value, lab.lab.underlay_mtu),
        Addr(SHIM, IPv4Interface(f"{node.gateway}/32")),
        Up(SHIM),
    ]
    if mode is IpvlanMode.L2:
        steps.append(Route(lab.networking.pod_subnet, SHIM))
        return steps
    steps.append(Route(node.pod_cidr, SHIM))
    steps += [hostgw.route_to(remote) for remote in alloc.nodes.values() if remote.name != node.name]
    return steps


def pod_steps(lab: LabFile, alloc: Allocation, pod: Pod) -> list[Step]:
    mode = lab.lab.options.mode
    link = Ipvlan(POD_IF, NODE_UPLINK, mode.value, lab.lab.underlay_mtu,
                  parent_netns=node_netns(lab.lab.name, pod.node), netns=pod_netns(lab.lab.name, pod))
    if mode is IpvlanMode.L2:
        return macvlan.on_segment(lab, alloc, pod, link)
    return [link] + pod_address(alloc, pod) + [
        Route(IPv4Network("0.0.0.0/0"), POD_IF),   # l3: the node's stack routes everything
    ]


KIND = BackendKind("ipvlan", node_steps, link_kinds=("ipvlan",), pod_steps=pod_steps, l2=L2Need(
    "ipvlan needs one L2 segment for all nodes", "put every node in one rack, or use backend vxlan"),
    options=Options("ipvlan", ("mode",), parse_options))
