"""Calico's BGP mode: no tunnel and no route written by netlab between nodes. Each node runs a
real BIRD that announces its own block and learns the others' blocks, which it writes to the
kernel as `<block> via <peer IP> dev eth0 proto bird`.

Node-to-node mesh (Calico's default): one iBGP session per pair of nodes, the side whose peer
sorts higher passive. Route reflectors (spec.bgp.routeReflectors): the reflectors peer with every
node, reflecting the non-reflectors' routes (`rr client; rr cluster id`); with the mesh off the
other nodes peer only with the reflectors. Pods stay on cni0 as with host-gw: only the
node-to-node routes are Calico's (see ipip.py for the same deviation). Each node holds a
`blackhole` route for its block, as Calico does, behind the block's route on cni0.

Racks (Calico's "AS per rack" design): each rack is its own AS (asNumber + the rack's index), its
nodes mesh within the rack, and each node peers over eBGP with the VPC router — which runs BIRD
too, in AS asNumber + the number of racks — so pods are routed across racks with no tunnel,
where host-gw is refused.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..birdconf import BirdNode, Peer, mesh_protocol, passive_towards, render
from ..daemon import DaemonRun
from ..ipam import Allocation, NodeAlloc, Rack
from ...model.checks import MISSING, DocChecker
from ...model.lab import LabFile, NodeSpec
from .kind import BackendKind, Options
from ..steps import Blackhole, Step

BLACKHOLE_METRIC = 1024      # behind cni0's connected route (metric 0) for the same /24
BIRD_CONF = "etc/bird/bird.conf"      # the node's /etc/bird/bird.conf (netlab.kernel.nodefs)
# -R: graceful restart recovery at start, as calico-node runs BIRD (keeps the kernel routes a previous
# BIRD left, thanks to persist, until the sessions are back)
BIRD_ARGV = ("bird", "-f", "-R", "-c", "/etc/bird/bird.conf", "-s", "/run/bird/bird.ctl")


@dataclass(frozen=True)
class BgpOptions:
    """Calico's BGPConfiguration, the lab file's spec.bgp: the cluster's AS (Calico's default 64512),
    whether every node peers with every other (nodeToNodeMesh), and the nodes acting as route reflectors."""

    as_number: int = 64512
    node_to_node_mesh: bool = True
    route_reflectors: tuple[str, ...] = ()


def parse_options(raw: dict, check: DocChecker, path: str) -> BgpOptions:
    """spec.bgp: Calico's BGPConfiguration fields (asNumber, nodeToNodeMeshEnabled as
    nodeToNodeMesh) and the route reflector nodes (Calico: nodes with a routeReflectorClusterID),
    as written; check_nodes checks them against the lab's nodes."""
    defaults = BgpOptions()
    asn = check.integer(raw.get("asNumber", MISSING), f"{path}.asNumber", 1, (1 << 32) - 1)
    mesh = check.boolean(raw.get("nodeToNodeMesh", MISSING), f"{path}.nodeToNodeMesh")
    listed = check.sequence(raw.get("routeReflectors", MISSING), f"{path}.routeReflectors")
    named = tuple(check.string(item, f"{path}.routeReflectors[{i}]", required=True) for i, item in enumerate(listed))
    return BgpOptions(asn or defaults.as_number, defaults.node_to_node_mesh if mesh is None else mesh,
                      tuple("" if n is None else n for n in named))


def check_nodes(opts: BgpOptions, nodes: tuple[NodeSpec, ...], check: DocChecker, path: str) -> BgpOptions:
    """The reflectors must be the lab's nodes, once each, in one AS (no racks); and some node must peer."""
    names = [node.name for node in nodes]
    reflectors: list[str] = []
    for i, node in enumerate(opts.route_reflectors):
        where = f"{path}.routeReflectors[{i}]"
        if not node:
            continue   # reported by parse_options
        if node not in names:
            check.error(where, f"unknown node {node!r}",
                        "use one of: " + ", ".join(names) if names else "declare the node")
        elif node in reflectors:
            check.error(where, f"node {node!r} is listed twice", "list each reflector once")
        else:
            reflectors.append(node)
    if reflectors and len({node.rack for node in nodes}) > 1:
        check.error(f"{path}.routeReflectors", "route reflectors serve one AS, and with racks each rack is "
                    "its own AS peering with the VPC router", "remove routeReflectors, or the nodes' racks")
    if not opts.node_to_node_mesh and not opts.route_reflectors:
        check.error(f"{path}.nodeToNodeMesh", "with the node-to-node mesh off and no route reflectors "
                    "no node would peer with any other", "list routeReflectors, or set nodeToNodeMesh: true")
    return BgpOptions(opts.as_number, opts.node_to_node_mesh, tuple(reflectors))


def node_steps(lab: LabFile, alloc: Allocation, node: NodeAlloc) -> list[Step]:
    return [Blackhole(node.pod_cidr, BLACKHOLE_METRIC)]


def racked(alloc: Allocation) -> bool:
    return len(alloc.racks) > 1


def rack_as(lab: LabFile, rack: Rack) -> int:
    return lab.lab.options.as_number + rack.index


def router_as(lab: LabFile, alloc: Allocation) -> int:
    return lab.lab.options.as_number + len(alloc.racks)


def node_as(lab: LabFile, alloc: Allocation, node: NodeAlloc) -> int:
    return rack_as(lab, node.rack) if racked(alloc) else lab.lab.options.as_number


def peers(lab: LabFile, alloc: Allocation, node: NodeAlloc) -> tuple[Peer, ...]:
    opts: BgpOptions = lab.lab.options
    reflectors = set(opts.route_reflectors)
    asn = node_as(lab, alloc, node)
    out: list[Peer] = []
    if racked(alloc):   # the rack's router, over eBGP (Calico: a global peer)
        out.append(Peer(mesh_protocol(node.rack.router_ip, "Global"), node.rack.router_ip, router_as(lab, alloc)))
    for other in alloc.nodes.values():
        if other.name == node.name or other.rack != node.rack:
            continue
        if node.name in reflectors:
            # a reflector ignores the mesh (Calico) and peers with every node; non-reflectors are its clients
            out.append(Peer(mesh_protocol(other.underlay_ip, "Node"), other.underlay_ip, asn,
                            rr_client=other.name not in reflectors))
        elif other.name in reflectors:
            out.append(Peer(mesh_protocol(other.underlay_ip, "Node"), other.underlay_ip, asn))
        elif opts.node_to_node_mesh:
            out.append(Peer(mesh_protocol(other.underlay_ip), other.underlay_ip, asn,
                            passive=passive_towards(node.underlay_ip, other.underlay_ip)))
    return tuple(out)


def bird_node(lab: LabFile, alloc: Allocation, node: NodeAlloc) -> BirdNode:
    role = "route reflector" if node.name in lab.lab.options.route_reflectors else "node"
    return BirdNode(node.name, node.underlay_ip, node_as(lab, alloc, node), (node.pod_cidr,),
                    lab.networking.pod_subnet, peers(lab, alloc, node), role)


def bird_router(lab: LabFile, alloc: Allocation) -> BirdNode:
    """The VPC router's BIRD: an eBGP session with every node, each from the router's address in
    the node's rack; it announces every block it learns to the other racks."""
    sessions = tuple(Peer(mesh_protocol(n.underlay_ip, "Node"), n.underlay_ip, rack_as(lab, n.rack),
                          source=n.rack.router_ip) for n in alloc.nodes.values())
    return BirdNode("vpc", alloc.racks[0].router_ip, router_as(lab, alloc), (), lab.networking.pod_subnet,
                    sessions, "rack router")


def bird(conf: str) -> DaemonRun:
    return DaemonRun("bird", BIRD_ARGV, ((BIRD_CONF, conf),), dirs=("run/bird",), package="bird2")


def node_daemons(lab: LabFile, alloc: Allocation, node: NodeAlloc) -> tuple[DaemonRun, ...]:
    return (bird(render(bird_node(lab, alloc, node))),)


def router_daemons(lab: LabFile, alloc: Allocation) -> tuple[DaemonRun, ...]:
    return (bird(render(bird_router(lab, alloc))),) if racked(alloc) else ()


KIND = BackendKind("bgp", node_steps, node_daemons=node_daemons, router_daemons=router_daemons,
                   options=Options("bgp", ("asNumber", "nodeToNodeMesh", "routeReflectors"), parse_options,
                                   check_nodes))
