"""Calico's BGP mode: no tunnel and no route written by netlab between nodes. Each node runs a
real BIRD that announces its own block and learns the others' blocks, which it writes to the
kernel as `<block> via <peer IP> dev eth0 proto bird`.

Node-to-node mesh (Calico's default): one iBGP session per pair of nodes, the side whose peer
sorts higher passive. Route reflectors (spec.bgp.routeReflectors): the reflectors peer with every
node, reflecting the non-reflectors' routes (`rr client; rr cluster id`); with the mesh off the
other nodes peer only with the reflectors. Pods stay on cni0 as with host-gw: only the
node-to-node routes are Calico's (see ipip.py for the same deviation). Each node holds a
`blackhole` route for its block, as Calico does, behind the block's route on cni0.
"""
from __future__ import annotations

from ..birdconf import BirdNode, Peer, mesh_protocol, passive_towards, render
from ..daemon import DaemonRun
from ..ipam import Allocation, NodeAlloc
from ...model.lab import Backend, LabFile
from .kind import BackendKind, L2Need
from ..steps import Blackhole, Step

BLACKHOLE_METRIC = 1024      # behind cni0's connected route (metric 0) for the same /24
BIRD_CONF = "etc/bird/bird.conf"      # the node's /etc/bird/bird.conf (netlab.kernel.nodefs)
BIRD_ARGV = ("bird", "-f", "-c", "/etc/bird/bird.conf", "-s", "/run/bird/bird.ctl")


def node_steps(lab: LabFile, alloc: Allocation, node: NodeAlloc) -> list[Step]:
    return [Blackhole(node.pod_cidr, BLACKHOLE_METRIC)]


def peers(lab: LabFile, alloc: Allocation, node: NodeAlloc) -> tuple[Peer, ...]:
    opts = lab.lab.bgp
    reflectors = set(opts.route_reflectors)
    asn = opts.as_number
    out: list[Peer] = []
    for other in alloc.nodes.values():
        if other.name == node.name:
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
    role = "route reflector" if node.name in lab.lab.bgp.route_reflectors else "node"
    return BirdNode(node.name, node.underlay_ip, lab.lab.bgp.as_number, (node.pod_cidr,),
                    lab.networking.pod_subnet, peers(lab, alloc, node), role)


def node_daemons(lab: LabFile, alloc: Allocation, node: NodeAlloc) -> tuple[DaemonRun, ...]:
    return (DaemonRun("bird", BIRD_ARGV, ((BIRD_CONF, render(bird_node(lab, alloc, node))),),
                      dirs=("run/bird",), package="bird2"),)


KIND = BackendKind(Backend.BGP, node_steps, node_daemons=node_daemons, l2=L2Need(
    "bgp peers the nodes over the underlay and the VPC router does not take part in BGP, "
    "so a route to another rack's pods would point at a router that does not know them",
    "keep the nodes in one rack, or use backend vxlan or ipip across racks"))
