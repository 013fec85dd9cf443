"""Plan steps: plain data naming one kernel object each, with the `ip` command it equals.

The applier (netlab.apply) is the only code that turns these into netlink requests;
`describe()` is what `netlab up --dry-run` prints, so a reader can map every object to
the iproute2 command that would make it.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network


@dataclass(frozen=True)
class Sysctl:
    """A sysctl written in this namespace; an `optional` one is skipped where the kernel lacks the key."""

    key: str     # under /proc/sys, e.g. net/ipv4/ip_forward
    value: str
    optional: bool = False   # skipped where the kernel lacks the key (a module that is not loaded)

    def describe(self) -> str:
        text = f"sysctl -w {self.key.replace('/', '.')}={self.value}"
        return text + "    # when the key exists" if self.optional else text


@dataclass(frozen=True)
class Bridge:
    """A Linux bridge in this namespace (cni0, a rack's bridge in the VPC), with its MTU."""

    name: str
    mtu: int

    def describe(self) -> str:
        return f"ip link add {self.name} type bridge mtu {self.mtu}"


@dataclass(frozen=True)
class Veth:
    """A veth pair made from this namespace, its peer created straight into `peer_netns`."""

    name: str
    peer: str
    peer_netns: str
    mtu: int
    peer_master: str | None = None
    hairpin: bool = False

    def describe(self) -> str:
        text = f"ip link add {self.name} mtu {self.mtu} type veth peer {self.peer} netns {self.peer_netns}"
        if self.peer_master:
            text += f"; ip -n {self.peer_netns} link set {self.peer} master {self.peer_master} up"
        if self.hairpin:
            text += f"; bridge -n {self.peer_netns} link set dev {self.peer} hairpin on"
        return text


@dataclass(frozen=True)
class Vxlan:
    """flannel's VTEP: a VXLAN device with a fixed MAC and no learning, on the underlying device `dev`."""

    name: str
    vni: int
    port: int
    local: IPv4Address
    dev: str
    mtu: int
    mac: str

    def describe(self) -> str:
        return (f"ip link add {self.name} address {self.mac} mtu {self.mtu} type vxlan id {self.vni} "
                f"local {self.local} dev {self.dev} dstport {self.port} nolearning")


# A child made in its parent's namespace for another one is made under this name and renamed
# there: before 6.3 the kernel checks a new link's name in the parent's namespace (netlab.apply).
CHILD_TEMP_NAME = "netlab-new"


def _underlay_child(step: "Macvlan | Ipvlan", kind: str) -> str:
    where = f"ip -n {step.parent_netns} " if step.parent_netns else "ip "
    if not step.netns:
        return f"{where}link add {step.name} link {step.parent} mtu {step.mtu} type {kind} mode {step.mode}"
    return (f"{where}link add {step.temp_name} link {step.parent} mtu {step.mtu} netns {step.netns} "
            f"type {kind} mode {step.mode}; ip -n {step.netns} link set {step.temp_name} name {step.name}")


@dataclass(frozen=True)
class Macvlan:
    """A macvlan child of `parent`. With `parent_netns` it is made in that namespace (where the
    parent lives) and placed in this one, `netns`, by the same request (IFLA_NET_NS_FD)."""

    name: str
    parent: str
    mode: str
    mtu: int
    parent_netns: str | None = None
    netns: str | None = None

    temp_name = CHILD_TEMP_NAME

    def describe(self) -> str:
        return _underlay_child(self, "macvlan")


@dataclass(frozen=True)
class Ipvlan:
    """An ipvlan child of `parent` (it shares the parent's MAC); `parent_netns` as for Macvlan."""

    name: str
    parent: str
    mode: str     # l2 | l3
    mtu: int
    parent_netns: str | None = None
    netns: str | None = None

    temp_name = CHILD_TEMP_NAME

    def describe(self) -> str:
        return _underlay_child(self, "ipvlan")


@dataclass(frozen=True)
class Ipip:
    """Calico's tunl0: an IPIP device with no fixed remote; each route's gateway is the outer
    destination. Loading the ipip module already puts a fallback tunl0 in every namespace."""

    name: str
    mtu: int

    def describe(self) -> str:
        return f"ip link add {self.name} mtu {self.mtu} type ipip || ip link set {self.name} mtu {self.mtu}"


@dataclass(frozen=True)
class WgDevice:
    """A WireGuard device with the node's private key (its own /run/flannel/wgkey, as flannel
    keeps it) and listen port. The kernel's device where the kernel has WireGuard, otherwise
    wireguard-go's TUN device (a process of the node); either is then set with `wg`."""

    name: str
    mtu: int
    port: int
    key_file: str = "/run/flannel/wgkey"

    def describe(self) -> str:
        return (f"ip link add {self.name} mtu {self.mtu} type wireguard "
                f"(or: wireguard-go {self.name}; ip link set {self.name} mtu {self.mtu}); "
                f"wg set {self.name} listen-port {self.port} private-key {self.key_file}")


@dataclass(frozen=True)
class WgPeer:
    """One remote node as a peer: its public key, its pod block as AllowedIPs, its underlay IP
    as Endpoint. Peers are converged on every run (added, re-keyed, removed), never rebuilt:
    they stay out of the namespace's fingerprint."""

    dev: str
    node: str                 # the remote node, whose public key is read from its own files
    allowed_ips: IPv4Network
    endpoint: IPv4Address
    port: int
    keepalive: int = 0
    psk_file: str | None = None

    converged = True          # not part of the namespace's fingerprint (netlab.core.plan)

    def describe(self) -> str:
        text = (f"wg set {self.dev} peer <public key of {self.node}> allowed-ips {self.allowed_ips} "
                f"endpoint {self.endpoint}:{self.port}")
        if self.keepalive:
            text += f" persistent-keepalive {self.keepalive}"
        if self.psk_file:
            text += f" preshared-key {self.psk_file}"
        return text


@dataclass(frozen=True)
class Up:
    """A link of this namespace set up."""

    dev: str

    def describe(self) -> str:
        return f"ip link set {self.dev} up"


@dataclass(frozen=True)
class Addr:
    """An address on a link of this namespace."""

    dev: str
    address: IPv4Interface

    def describe(self) -> str:
        return f"ip addr add {self.address.with_prefixlen} dev {self.dev}"


@dataclass(frozen=True)
class Route:
    """A route to `dst` out of `dev`, through `via` when given (`onlink`: the gateway need not be in
    a subnet of the link)."""

    dst: IPv4Network
    dev: str
    via: IPv4Address | None = None
    onlink: bool = False

    def describe(self) -> str:
        dst = "default" if self.dst.prefixlen == 0 else str(self.dst)
        via = f" via {self.via}" if self.via else ""
        return f"ip route add {dst}{via} dev {self.dev}" + (" onlink" if self.onlink else "")


@dataclass(frozen=True)
class Blackhole:
    """A route that drops: Calico's route for a node's own block, which BIRD learns and announces.

    `metric` keeps it behind the block's connected route on cni0 (metric 0): it drops only
    what no pod interface claims, as Calico's blackhole does beneath its pods' /32 routes."""

    dst: IPv4Network
    metric: int

    def describe(self) -> str:
        return f"ip route add blackhole {self.dst} metric {self.metric}"


@dataclass(frozen=True)
class Neigh:
    """A permanent neighbour entry: `ip` has MAC `mac` on `dev` (flannel's entry for a remote VTEP)."""

    dev: str
    ip: IPv4Address
    mac: str

    def describe(self) -> str:
        return f"ip neigh add {self.ip} lladdr {self.mac} dev {self.dev} nud permanent"


@dataclass(frozen=True)
class Fdb:
    """A permanent fdb entry of a VXLAN device: frames for `mac` go to the remote VTEP at `dst`."""

    dev: str
    mac: str
    dst: IPv4Address

    def describe(self) -> str:
        return f"bridge fdb add {self.mac} dev {self.dev} dst {self.dst} self permanent"


@dataclass(frozen=True)
class Note:
    """Something the kernel does by itself, shown in the plan so the picture is complete."""

    text: str

    def describe(self) -> str:
        return f"# {self.text}"


Step = (Sysctl | Bridge | Veth | Vxlan | Macvlan | Ipvlan | Ipip | WgDevice | WgPeer | Up | Addr | Route | Blackhole
        | Neigh | Fdb | Note)
