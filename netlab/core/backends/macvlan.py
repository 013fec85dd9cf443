"""macvlan, bridge mode: each pod's eth0 is a macvlan child of its node's uplink (eth0).

Pods of every node are neighbours on the underlay LAN: no cni0, no tunnel, no routing hop.
Addresses stay kubeadm's (a /24 per node), and since every pod shares one L2 segment each
pod routes the whole podSubnet on-link (`<podSubnet> dev eth0`): a pod on another node is
one ARP away, and a packet reaches it with its TTL untouched.

The parent cannot reach its children: macvlan hands a child's frames to the wire or to a
sibling, never up the parent's stack, and the parent's own frames leave by the wire too.
So with nothing else a node cannot talk to its own pods (node → pod fails, as does pod →
its node's underlay IP). netlab does what people do for Docker macvlan networks: a "shim",
one more macvlan child of eth0 in the node namespace. It holds the node's gateway address
(.1 of its /24, free since there is no cni0) and the route `<podSubnet> dev macvlan-shim`,
so the node reaches its own pods, sibling to sibling, and other nodes' pods over the LAN;
pods take the shim as their default gateway towards the underlay.

MACs are the kernel's random ones: a rebuilt pod gets a new MAC and announces it with a
gratuitous ARP as it comes up (arp_notify=1), so neighbours' caches follow at once.
"""
from __future__ import annotations

from ipaddress import IPv4Interface, IPv4Network

from ..ipam import Allocation, NodeAlloc
from ...model.lab import LabFile, Pod
from ...names import NODE_UPLINK, POD_IF, node_netns, pod_netns
from ..pod import pod_address
from .kind import BackendKind, L2Need
from ..steps import Addr, Macvlan, Route, Step, Sysctl, Up

MODE = "bridge"          # children of one parent talk to each other without the wire
SHIM = "macvlan-shim"
ARP_NOTIFY = Sysctl("net/ipv4/conf/all/arp_notify", "1")


def node_steps(lab: LabFile, alloc: Allocation, node: NodeAlloc) -> list[Step]:
    return [
        # The shim and eth0 sit on one segment: answer ARP only on the interface that owns the address.
        Sysctl("net/ipv4/conf/all/arp_ignore", "1"),
        ARP_NOTIFY,
        Macvlan(SHIM, NODE_UPLINK, MODE, lab.lab.underlay_mtu),
        Addr(SHIM, IPv4Interface(f"{node.gateway}/32")),
        Up(SHIM),
        Route(lab.networking.pod_subnet, SHIM),
    ]


def pod_steps(lab: LabFile, alloc: Allocation, pod: Pod) -> list[Step]:
    link = Macvlan(POD_IF, NODE_UPLINK, MODE, lab.lab.underlay_mtu,
                   parent_netns=node_netns(lab.lab.name, pod.node), netns=pod_netns(lab.lab.name, pod))
    return [ARP_NOTIFY] + on_segment(lab, alloc, pod, link)


def on_segment(lab: LabFile, alloc: Allocation, pod: Pod, link: Step) -> list[Step]:
    """A pod whose eth0 is `link`, on the one L2 segment all pods share."""
    node = alloc.nodes[pod.node]
    return [link] + pod_address(alloc, pod) + [
        Route(lab.networking.pod_subnet, POD_IF),
        Route(IPv4Network("0.0.0.0/0"), POD_IF, via=node.gateway),
    ]


KIND = BackendKind("macvlan", node_steps, link_kinds=("macvlan",), pod_steps=pod_steps, l2=L2Need(
    "macvlan needs one L2 segment for all pods", "put every node in one rack, or use backend vxlan"))
