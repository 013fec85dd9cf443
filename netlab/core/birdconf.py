"""bird.conf for one node: Calico's confd templates (bird.cfg, bird_aggr.cfg, bird_ipam.cfg)
written in BIRD 2's syntax. Pure: peers in, text out.

Calico runs a BIRD 1.6 fork; BIRD 2 (Debian's bird2) differs where this file says so:
- every protocol carries its routes over a channel: `ipv4 { import ...; export ...; }`, and
  `gateway recursive` and `add paths` are channel options;
- the kernel protocol writes routes with metric 32 unless told: `metric 0` gives the kernel
  the routes Calico's BIRD writes (`<block> via <peer> dev eth0 proto bird`);
- the fork's `krt_tunnel` attribute (IPIP) does not exist: bgp is Calico's BGP mode without IPIP,
  so calico_kernel_programming accepts the pool's routes as they are.
The timers are those of Calico 3.x's template (connect delay 2, retry 5, error wait 5,30).
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

RR_CLUSTER_ID = IPv4Address("244.0.0.1")   # the cluster id Calico's route reflector docs use


@dataclass(frozen=True)
class Peer:
    """One BGP session of this node, named as Calico's templates name it."""

    protocol: str                 # Mesh_10_250_0_11 (node-to-node mesh), Node_... (explicit peers)
    ip: IPv4Address
    asn: int
    passive: bool = False         # the mesh's unidirectional sessions: the peer connects to us
    rr_client: bool = False       # we reflect this peer's routes (we are a route reflector)
    source: IPv4Address | None = None   # the local address of the session (default: the router id)


@dataclass(frozen=True)
class BirdNode:
    """One BGP speaker's bird.conf: a node (or the VPC as rack router), its router id, AS, own blocks,
    the pool and its peers."""

    name: str
    router_id: IPv4Address         # the node's underlay IP (Calico: the node's IPv4 address)
    asn: int
    blocks: tuple[IPv4Network, ...]   # the node's own blocks: exported, nothing beneath them
    pool: IPv4Network              # the IP pool (podSubnet): routes in it are exported and programmed
    peers: tuple[Peer, ...]
    role: str = "node"             # "node", or "route reflector", "rack router": said in a comment


def mesh_protocol(ip: IPv4Address, prefix: str = "Mesh") -> str:
    return f"{prefix}_{str(ip).replace('.', '_')}"


def passive_towards(own: IPv4Address, peer: IPv4Address) -> bool:
    """Calico's template compares the two addresses as strings (`gt $onode_ip $node_ip`): the side
    whose peer sorts higher waits for the peer to connect, so each pair has one connecting side."""
    return str(peer) > str(own)


def render(node: BirdNode) -> str:
    out = [
        f"# bird.conf of {node.name} ({node.role}), written by netlab: Calico's confd templates",
        "# (bird.cfg, bird_aggr.cfg, bird_ipam.cfg) in BIRD 2 syntax.",
        "log stderr all;",
        f"router id {node.router_id};",
        "",
        "# ---- bird_aggr.cfg: this node's blocks; export the block, nothing beneath it",
        "function calico_aggr ()",
        "{",
    ]
    for block in node.blocks:
        out += [f"  if ( net = {block} ) then {{ accept; }}",
                f"  if ( net ~ {block} ) then {{ reject; }}"]
    out += [
        "}",
        "",
        "# ---- bird_ipam.cfg",
        "function calico_export_to_bgp_peers ()",
        "{",
        "  calico_aggr();",
        f"  if ( net ~ {node.pool} ) then {{ accept; }}",
        "  reject;",
        "}",
        "",
        "filter calico_kernel_programming",
        "{",
        "  # BIRD 2 offers the kernel the direct protocol's routes too: the kernel has them (EEXIST)",
        "  if ( source = RTS_DEVICE ) then { reject; }",
        f"  if ( net ~ {node.pool} ) then {{ accept; }}",
        "  accept;",
        "}",
        "",
        "# ---- bird.cfg",
        "# Configure synchronization between routing tables and kernel.",
        "protocol kernel {",
        "  ipv4 {",
        "    import all;",
        "    export filter calico_kernel_programming;",
        "  };",
        "  learn;             # Learn all alien routes from the kernel",
        "  persist;           # Don't remove routes on bird shutdown",
        "  scan time 2;       # Scan kernel routing table every 2 seconds",
        "  graceful restart;  # Keep the kernel's routes while BIRD restarts",
        "  merge paths on;    # Allow export multipath routes (ECMP)",
        "  metric 0;          # BIRD 2 writes metric 32 by default; Calico's routes have none",
        "}",
        "",
        "# Watch interface up/down events.",
        "protocol device {",
        "  scan time 2;    # Scan interfaces every 2 seconds",
        "}",
        "",
        "protocol direct {",
        "  debug { states };",
        "  ipv4;",
        "  # netlab's pods sit behind cni0 where Calico's sit on cali* veths: left out alike, so the",
        "  # block is announced from its blackhole route, as on a Calico node",
        '  interface -"cali*", -"kube-ipvs*", -"cni0", "*";',
        "}",
        "",
        "# Template for all BGP clients",
        "template bgp bgp_template {",
        "  debug { states };",
        '  description "Connection to BGP peer";',
        f"  local as {node.asn};",
        "  ipv4 {",
        "    gateway recursive;   # a channel option in BIRD 2",
        "    import all;",
        "    export filter { calico_export_to_bgp_peers(); reject; };",
        "    add paths on;",
        "  };",
        "  graceful restart;",
        "  connect delay time 2;",
        "  connect retry time 5;",
        "  error wait time 5,30;",
        "}",
    ]
    for peer in node.peers:
        out += ["", f"protocol bgp {peer.protocol} from bgp_template {{",
                f"  neighbor {peer.ip} as {peer.asn};",
                f"  source address {peer.source or node.router_id};  # The local address we use for the TCP connection"]
        if peer.passive:
            out.append("  passive on; # Mesh is unidirectional, peer will connect to us.")
        if peer.rr_client:
            out += ["  rr client;", f"  rr cluster id {RR_CLUSTER_ID};"]
        out.append("}")
    if not node.peers:
        out += ["", "# No BGP peers."]
    return "\n".join(out) + "\n"
