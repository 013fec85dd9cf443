"""The plan: which namespaces exist and which objects and processes each holds. Pure data."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from ipaddress import IPv4Interface, IPv4Network

from . import backends
from .clusterip import has_services
from .daemon import DaemonRun
from .ipam import Allocation, NodeAlloc
from .pod import pod_address
from ..model.lab import LabFile, Pod
from ..model.security import effective_caps
from ..names import BRIDGE, NODE_UPLINK, POD_IF, Role, node_netns, pod_netns, vpc_netns
from .steps import Addr, Bridge, Ipip, Ipvlan, Macvlan, Route, Step, Sysctl, Up, Veth, Vxlan

DEFAULT_ROUTE = IPv4Network("0.0.0.0/0")



@dataclass(frozen=True)
class ContainerRun:
    """A container to start in a pod: its argv (empty: the built-in responder), the responder's ports,
    its env and its capabilities."""

    name: str
    argv: tuple[str, ...]          # empty: the built-in responder
    ports: tuple[tuple[int, str], ...] = ()   # (port, protocol) for the responder
    env: tuple[tuple[str, str], ...] = ()     # the container's env: list
    capabilities: tuple[str, ...] | None = effective_caps((), ())   # None: privileged


@dataclass(frozen=True)
class NetnsPlan:
    """One namespace to build (the VPC, a node or a pod): its steps in order, its containers and daemons,
    and the fingerprint that says when it must be rebuilt."""

    name: str                       # the file under /run/netns
    role: Role
    subject: str                    # node name, pod key, or the lab name for the VPC
    steps: tuple[Step, ...]
    depends_on: str | None = None   # a namespace whose rebuild forces this one's
    containers: tuple[ContainerRun, ...] = ()
    fingerprint: str = field(default="", compare=False)
    daemons: tuple[DaemonRun, ...] = ()   # a node's daemons (the backend's: BIRD), owned like containers
    hostname: str = ""              # a pod's sandbox hostname (spec.hostname, else its name)
    dns: tuple = ()                 # what a pod's resolv.conf depends on: a change rebuilds its sandbox


@dataclass(frozen=True)
class Plan:
    """Everything to build for a lab: the lab, its addresses, the pod MTU, and each namespace's plan."""

    lab: LabFile
    alloc: Allocation
    mtu: int
    namespaces: tuple[NetnsPlan, ...]

    def find(self, role: Role, subject: str) -> NetnsPlan | None:
        return self._by_subject.get((role, subject))

    @cached_property
    def _by_subject(self) -> dict[tuple[Role, str], NetnsPlan]:
        # looked up once per pod: a scan each time would make big labs quadratic
        return {(ns.role, ns.subject): ns for ns in self.namespaces}


def short_hash(*parts: str, n: int = 8) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:n]


def pod_host_veth(lab: str, pod: Pod) -> str:
    """The CNI bridge plugin's host-side name: "veth" + 8 hex characters."""
    return "veth" + short_hash(lab, pod.namespace, pod.name)


def node_vpc_port(node: str) -> str:
    """The node's port on the VPC bridge: its name when it fits an interface name."""
    return node if len(node) <= 15 else "n-" + short_hash(node, n=13)


def rack_bridge(rack_index: int, rack_name: str) -> str:
    return "vpc0" if rack_index == 0 else ("vpc-" + rack_name)[:15]


def pod_mtu(lab: LabFile) -> int:
    return lab.lab.underlay_mtu - backends.of(lab).overhead


def build(lab: LabFile, alloc: Allocation) -> Plan:
    mtu = pod_mtu(lab)
    name = lab.lab.name
    spaces = [_vpc(lab, alloc)]
    for node in alloc.nodes.values():
        spaces.append(_node(lab, alloc, node, mtu))
    for pod in lab.pods:
        spaces.append(_pod(lab, alloc, pod, mtu))
    fingerprinted = tuple(_with_fingerprint(ns, name) for ns in spaces)
    return Plan(lab, alloc, mtu, fingerprinted)


def _with_fingerprint(ns: NetnsPlan, lab: str) -> NetnsPlan:
    # converged steps (WireGuard peers) change in place on every run: a new node adds peers, not rebuilds
    built = tuple(step for step in ns.steps if not getattr(step, "converged", False))
    digest = hashlib.sha256(repr((lab, ns.name, ns.role, built, ns.containers, ns.hostname)
                                 + ((ns.daemons,) if ns.daemons else ()) + ((ns.dns,) if ns.dns else ())
                                 ).encode()).hexdigest()[:16]
    return NetnsPlan(ns.name, ns.role, ns.subject, ns.steps, ns.depends_on, ns.containers, digest, ns.daemons,
                     ns.hostname, ns.dns)


def _vpc(lab: LabFile, alloc: Allocation) -> NetnsPlan:
    steps: list[Step] = [Up("lo")]
    routed = len(alloc.racks) > 1
    gateway = routed or has_services(lab)   # with Services, the VPC is the nodes' default gateway
    for rack in alloc.racks:
        bridge = rack_bridge(rack.index, rack.name)
        steps += [Bridge(bridge, lab.lab.underlay_mtu), Up(bridge)]
        if gateway:
            steps.append(Addr(bridge, IPv4Interface(f"{rack.router_ip}/{rack.segment.prefixlen}")))
    if routed:
        steps.append(Sysctl("net/ipv4/ip_forward", "1"))
    return NetnsPlan(vpc_netns(lab.lab.name), Role.VPC, lab.lab.name, tuple(steps),
                     daemons=backends.router_daemons(lab, alloc))


def _node(lab: LabFile, alloc: Allocation, node: NodeAlloc, mtu: int) -> NetnsPlan:
    name = lab.lab.name
    rack = node.rack
    bridged = not backends.of(lab).pods_on_underlay   # macvlan/ipvlan: pods hang off eth0, no cni0
    steps: list[Step] = [Up("lo"), Sysctl("net/ipv4/ip_forward", "1")]
    if bridged:
        # only with br_netfilter loaded; netlab never loads modules (the host's bridges would change).
        # NetworkPolicy needs it and checks for it before building.
        steps.append(Sysctl("net/bridge/bridge-nf-call-iptables", "1", optional=True))
    steps += [
        Veth(NODE_UPLINK, node_vpc_port(node.name), vpc_netns(name), lab.lab.underlay_mtu,
             peer_master=rack_bridge(rack.index, rack.name)),
        Addr(NODE_UPLINK, IPv4Interface(f"{node.underlay_ip}/{rack.segment.prefixlen}")),
        Up(NODE_UPLINK),
    ]
    if len(alloc.racks) > 1:
        steps.append(Route(lab.lab.underlay_subnet, NODE_UPLINK, via=rack.router_ip))
    if has_services(lab):
        # a real node's default route: traffic to a ClusterIP kube-proxy did not DNAT (no endpoints,
        # an unserved port, an unallocated address) is routed, so its forward-hook checks reject or drop it
        steps.append(Route(DEFAULT_ROUTE, NODE_UPLINK, via=rack.router_ip))
    if bridged:
        steps += [
            Bridge(BRIDGE, mtu),
            Addr(BRIDGE, IPv4Interface(f"{node.gateway}/{node.pod_cidr.prefixlen}")),
            Up(BRIDGE),
        ]
    steps += backends.of(lab).node_steps(lab, alloc, node)
    return NetnsPlan(node_netns(name, node.name), Role.NODE, node.name, tuple(steps),
                     depends_on=vpc_netns(name), daemons=backends.daemons(lab, alloc, node))


def _pod(lab: LabFile, alloc: Allocation, pod: Pod, mtu: int) -> NetnsPlan:
    name = lab.lab.name
    node = alloc.nodes[pod.node]
    node_ns = node_netns(name, pod.node)
    steps: list[Step] = [Up("lo")]
    kind = backends.of(lab)
    if kind.pod_steps is not None:
        steps += kind.pod_steps(lab, alloc, pod)   # eth0 is a child of the node's eth0: no veth
    else:
        steps += [Veth(POD_IF, pod_host_veth(name, pod), node_ns, mtu, peer_master=BRIDGE, hairpin=True)]
        steps += pod_address(alloc, pod)
        steps += [
            Route(lab.networking.pod_subnet, POD_IF, via=node.gateway),
            Route(IPv4Network("0.0.0.0/0"), POD_IF, via=node.gateway),
        ]
    containers = tuple(
        ContainerRun(c.name, c.command, tuple((p.container_port, p.protocol.value) for p in c.ports), c.env,
                     None if c.privileged else effective_caps(c.cap_add, c.cap_drop))
        for c in pod.containers)
    return NetnsPlan(pod_netns(name, pod), Role.POD, pod.key, tuple(steps),
                     depends_on=node_ns, containers=containers, hostname=pod.hostname or pod.name,
                     dns=(pod.dns_policy.value, pod.dns_config, lab.lab.dns_enabled))


MAX_IFNAME = 15   # IFNAMSIZ - 1: the kernel refuses longer interface names


def interface_problems(the_plan: Plan) -> list[tuple[NetnsPlan, str]]:
    """Interface names the kernel would refuse, read from the plan itself: longer than 15
    characters, or made twice in one namespace (`lo` is in every namespace from the start)."""
    names: dict[str, dict[str, NetnsPlan]] = {ns.name: {"lo": ns} for ns in the_plan.namespaces}
    found: list[tuple[NetnsPlan, str]] = []
    for ns in the_plan.namespaces:
        for step in ns.steps:
            made: list[tuple[str, str]] = []
            if isinstance(step, (Bridge, Vxlan, Ipip)):
                made.append((ns.name, step.name))
            elif isinstance(step, Veth):
                made += [(ns.name, step.name), (step.peer_netns, step.peer)]
            elif isinstance(step, (Macvlan, Ipvlan)):
                made.append((step.netns or ns.name, step.name))
            for where, ifname in made:
                if len(ifname) > MAX_IFNAME:
                    found.append((ns, f"interface {ifname!r} in {where} is {len(ifname)} characters: "
                                      f"the kernel allows {MAX_IFNAME} (from `{step.describe()}`)"))
                    continue
                if isinstance(step, Ipip):
                    continue   # tunl0: the module's fallback device may already be there, by design
                held = names.setdefault(where, {})
                if ifname in held:
                    other = held[ifname]
                    found.append((ns, f"interface {ifname!r} in {where} would be made twice"
                                      f" ({'there from the start' if ifname == 'lo' else f'also for {other.role.value} {other.subject}'};"
                                      f" from `{step.describe()}`)"))
                    continue
                held[ifname] = ns
    return found


def subnet_env(lab: LabFile, node: NodeAlloc, mtu: int) -> dict[str, str] | None:
    """What flannel writes to /run/flannel/subnet.env on each node (flannel's backends only)."""
    if not backends.of(lab).flannel:
        return None
    return {
        "FLANNEL_NETWORK": str(lab.networking.pod_subnet),
        "FLANNEL_SUBNET": f"{node.gateway}/{node.pod_cidr.prefixlen}",
        "FLANNEL_MTU": str(mtu),
        "FLANNEL_IPMASQ": "true",
    }


def daemon_host(ns: NetnsPlan) -> str:
    """Whose files a namespace's daemons use (netlab.kernel.nodefs): the node's, or "vpc" (the
    router; no node may be called so)."""
    return "vpc" if ns.role is Role.VPC else ns.subject


def render(plan: Plan) -> str:
    """The plan as text: every namespace and the iproute2 command equal to each step."""
    out: list[str] = [f"# lab {plan.lab.lab.name}: backend {plan.lab.lab.backend.value}, "
                      f"{len(plan.alloc.nodes)} nodes, {len(plan.lab.pods)} pods, pod MTU {plan.mtu}"]
    for ns in plan.namespaces:
        out.append(f"\nip netns add {ns.name}    # {ns.role.value} {ns.subject}")
        out += [f"  {step.describe()}" for step in ns.steps]
        out += [f"  {daemon.describe()}" for daemon in ns.daemons]
        for run in ns.containers:
            what = " ".join(run.argv) if run.argv else \
                "built-in responder on " + ", ".join(f"{p}/{proto}" for p, proto in run.ports)
            out.append(f"  # container {run.name}: {what}")
    return "\n".join(out) + "\n"
