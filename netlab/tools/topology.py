"""The lab as a graph: boxes (the VPC, nodes, pods) with their interfaces, links between them,
and notes (NetworkPolicies, Services) — built from the state record and the kernel.

The record says what the lab is (nodes, pods, namespaces, policies, Services when the record
has them); each namespace's interfaces, bridge ports, veth peers, VXLAN fdb and routes are read
from the kernel (netlab.kernel.readback), so the picture shows what is there, not what was
planned. Renderers (netlab.tools.drawing) turn a Topology into dot, mermaid or JSON.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from ipaddress import ip_network
from typing import Callable, Sequence

from ..kernel.readback import LinkView, NetnsView
from ..ops.record import LabRecord, NodeRecord


@dataclass(frozen=True)
class Iface:
    """An interface of a box: name, kind, addresses, MTU, state, and a detail (e.g. a VXLAN's VNI and port)."""

    name: str
    kind: str
    addresses: tuple[str, ...] = ()
    mtu: int = 0
    up: bool = True
    extra: str = ""               # e.g. "VNI 1 udp/8472"


@dataclass
class Box:
    """A namespace in the graph (the VPC, a node or a pod) with its interfaces."""

    id: str                       # unique in the graph: "vpc", "node:node-1", "pod:default/web"
    kind: str                     # vpc | node | pod
    label: str
    netns: str
    node: str | None = None       # the node a pod runs on
    namespace: str | None = None  # a pod's Kubernetes namespace
    ip: str | None = None
    ifaces: list[Iface] = field(default_factory=list)


@dataclass(frozen=True)
class Edge:
    """A link between two boxes' interfaces: a veth pair, a macvlan or ipvlan child, a VXLAN tunnel, or
    a route."""

    src: str                      # box id
    src_if: str
    dst: str
    dst_if: str
    kind: str                     # veth | macvlan | ipvlan | vxlan | route
    label: str = ""


@dataclass(frozen=True)
class Note:
    """An annotation attached to boxes: a NetworkPolicy, a Service — more kinds may come."""
    id: str
    kind: str                     # NetworkPolicy | Service
    title: str                    # namespace/name
    lines: tuple[str, ...]
    attach: tuple[str, ...]       # box ids
    namespace: str | None = None


@dataclass
class Topology:
    """The lab as a graph: its boxes, the edges between them, and the notes."""

    lab: str
    backend: str
    boxes: list[Box] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    def box(self, box_id: str) -> Box | None:
        return next((b for b in self.boxes if b.id == box_id), None)

    def to_json(self) -> dict:
        return asdict(self)


def pod_id(key: str) -> str:
    return f"pod:{key}"


def node_id(name: str) -> str:
    return f"node:{name}"


VPC = "vpc"


def build(record: LabRecord, read: Callable[[str], NetnsView | None],
          notes: list[Note] | None = None, services: Sequence[dict] = ()) -> Topology:
    """The Topology of a running lab. `read(netns)` gives a namespace's view (None when gone);
    `services` are Services in the contract's status shape (the record has none yet)."""
    topo = Topology(record.name, record.backend)
    vpc_ns = record.underlay.netns if record.underlay else f"{record.name}.vpc"
    vpc = read(vpc_ns)
    subnet = record.underlay.subnet if record.underlay else ""
    topo.boxes.append(Box(VPC, "vpc", f"VPC {subnet}".strip(), vpc_ns, ifaces=_shown(vpc) if vpc else []))
    node_views: dict[str, NetnsView | None] = {}
    underlay_ips = {n.underlay_ip: n.name for n in record.nodes}
    for node in record.nodes:
        view = read(node.netns)
        node_views[node.name] = view
        box = Box(node_id(node.name), "node", f"{node.name} (podCIDR {node.pod_cidr})", node.netns,
                  node=node.name, ip=node.underlay_ip, ifaces=_shown(view) if view else [])
        topo.boxes.append(box)
        if view and vpc:
            topo.edges.extend(_uplinks(box, view, vpc))
    for node in record.nodes:
        view = node_views[node.name]
        if view:
            topo.edges.extend(_between_nodes(record, node, view, underlay_ips))
    for pod in record.pods:
        view = read(pod.netns)
        box = Box(pod_id(pod.key), "pod", pod.name, pod.netns, node=pod.node, namespace=pod.namespace,
                  ip=pod.ip, ifaces=_shown(view) if view else [])
        topo.boxes.append(box)
        node_view = node_views.get(pod.node)
        if view and node_view:
            topo.edges.extend(_pod_links(box, view, node_view))
    topo.notes.extend(service_notes(record, services))
    topo.notes.extend(notes or [])
    return topo


# made by the kernel in every new namespace once their module is loaded (ipip: tunl0, ...)
FALLBACK_TUNNELS = frozenset({"tunl0", "gre0", "gretap0", "erspan0", "sit0", "ip6tnl0", "ip6gre0",
                              "ip_vti0", "ip6_vti0"})


def _shown(view: NetnsView) -> list[Iface]:
    """The interfaces worth drawing: not lo, not the host ends of veths (drawn as the link), not
    a fallback tunnel the kernel made and nobody uses (down, no address; the ipip backend's tunl0
    is up)."""
    out = []
    for link in view.links:
        if link.kind == "loopback" or (link.kind == "veth" and link.master):
            continue
        if link.name in FALLBACK_TUNNELS and not link.up and not link.addresses:
            continue
        extra = ""
        if link.vxlan:
            extra = f"VNI {link.vxlan['vni']} udp/{link.vxlan['port']} local {link.vxlan['local']}"
        out.append(Iface(link.name, link.kind, link.addresses, link.mtu, link.up, extra))
    return out


def _uplinks(box: Box, view: NetnsView, vpc: NetnsView) -> list[Edge]:
    """A node's veth into the VPC, drawn to the VPC bridge its peer is a port of."""
    edges = []
    for link in view.links:
        if link.kind != "veth" or link.peer_index is None or link.peer_netnsid is None:
            continue
        peer = vpc.by_index(link.peer_index)
        if peer is not None and peer.kind == "veth" and peer.master:
            edges.append(Edge(box.id, link.name, VPC, peer.master, "veth", peer.name))
    return edges


def _pod_links(box: Box, view: NetnsView, node: NetnsView) -> list[Edge]:
    """A pod's interfaces into its node: a veth to its bridge, or a macvlan/ipvlan child of eth0."""
    edges = []
    for link in view.links:
        if link.peer_index is None or link.peer_netnsid is None:
            continue
        peer = node.by_index(link.peer_index)
        if peer is None:
            continue
        if link.kind == "veth":
            target = peer.master or peer.name
            edges.append(Edge(box.id, link.name, node_id_of(node, box), target, "veth", peer.name))
        elif link.kind in ("macvlan", "ipvlan"):
            edges.append(Edge(box.id, link.name, node_id_of(node, box), peer.name, link.kind, f"{link.kind} child"))
    return edges


def node_id_of(node: NetnsView, pod: Box) -> str:
    return node_id(pod.node or node.name)


def _between_nodes(record: LabRecord, node: NodeRecord, view: NetnsView,
                   underlay_ips: dict[str, str]) -> list[Edge]:
    """How this node reaches the others' pods: its routes to their podCIDRs, with the VXLAN
    fdb entry (outer destination) when the route leaves through a VXLAN device."""
    cidrs = {ip_network(n.pod_cidr): n for n in record.nodes if n.name != node.name}
    fdb_dst: dict[str, list[str]] = {}
    for entry in view.fdb:
        if entry.dst:
            fdb_dst.setdefault(entry.dev, []).append(entry.dst)
    edges = []
    for route in view.routes:
        if route.dst == "default":
            continue
        remote = cidrs.get(ip_network(route.dst, strict=False))
        if remote is None or route.dev is None:
            continue
        dev: LinkView | None = view.link(route.dev)
        text = f"{route.dst} via {route.gateway} dev {route.dev}" + (" onlink" if route.onlink else "")
        if dev is not None and dev.kind == "vxlan" and dev.vxlan:
            outer = remote.underlay_ip if remote.underlay_ip in fdb_dst.get(dev.name, []) else "?"
            edges.append(Edge(node_id(node.name), dev.name, node_id(remote.name), dev.name, "vxlan",
                              f"{route.dst} via {route.gateway}: VXLAN VNI {dev.vxlan['vni']} to "
                              f"{outer}:{dev.vxlan['port']}"))
        else:
            target = underlay_ips.get(route.gateway or "", remote.name)
            edges.append(Edge(node_id(node.name), route.dev, node_id(target), "eth0", "route", text))
    return edges


def service_notes(record: LabRecord, services: Sequence[dict]) -> list[Note]:
    """Services with their endpoints (the contract's status keys), attached to the record's pods."""
    notes = []
    pods_by_ip = {p.ip: p.key for p in record.pods}
    for svc in services:
        key = f"{svc['namespace']}/{svc['name']}"
        ports = ", ".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}→{p.get('targetPort')}"
                          for p in svc.get("ports", []))
        lines = [f"{svc.get('type', 'ClusterIP')} {svc.get('clusterIP') or ''} {ports}".strip()]
        attach = []
        for ep in svc.get("endpoints", []) or []:
            pod = ep.get("pod") or pods_by_ip.get(ep.get("ip", ""))
            lines.append(f"endpoint {ep.get('ip')}" + ("" if ep.get("ready", True) else " (not ready)"))
            if pod:
                attach.append(pod_id(pod))
        notes.append(Note(f"svc:{key}", "Service", key, tuple(lines), tuple(attach), svc["namespace"]))
    return notes


def policy_notes(lab, record: LabRecord) -> list[Note]:
    """NetworkPolicies of a loaded lab file, each attached to the pods it selects."""
    from ..core.policy.select import selects   # lazily: only when the lab has policies
    notes = []
    for policy in lab.policies:
        selector = policy.pod_selector
        shown = [f"{k}={v}" for k, v in selector.match_labels.items()]
        shown += [f"{r.key} {r.operator.value} {','.join(r.values)}".strip() for r in selector.match_expressions]
        lines = (f"selects {' '.join(shown) if shown else 'every pod'}",
                 f"{'/'.join(t.value for t in policy.policy_types)}: "
                 f"{len(policy.ingress)} ingress, {len(policy.egress)} egress rule(s)")
        attach = tuple(pod_id(p.key) for p in lab.pods if selects(policy, p))
        notes.append(Note(f"netpol:{policy.namespace}/{policy.name}", "NetworkPolicy",
                          f"{policy.namespace}/{policy.name}", lines, attach, policy.namespace))
    return notes


def recorded_policy_notes(record: LabRecord) -> list[Note]:
    """Only the names, when the lab's file cannot be read back."""
    return [Note(f"netpol:{key}", "NetworkPolicy", key, ("(its file is gone: selectors unknown)",), (),
                 key.split("/", 1)[0]) for key in record.policies]



def of_lab(record: LabRecord) -> Topology:
    """The Topology of a running lab, its namespaces read from the kernel now."""
    from ..kernel import readback   # lazily: pyroute2 only for commands that read the kernel
    from ..ops.policy import applied_file
    from ..errors import NetlabError

    def read(name: str) -> NetnsView | None:
        try:
            return readback.read(name)
        except FileNotFoundError:
            return None   # drawn without interfaces: the record has it, the kernel no longer

    notes: list[Note] = []
    if record.policies:
        try:
            notes = policy_notes(applied_file(record).lab, record)
        except NetlabError:
            notes = recorded_policy_notes(record)
    return build(record, read, notes)
