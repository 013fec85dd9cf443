"""kube-proxy's nftables mode, pure: the ruleset kube-proxy v1.33-1.35 writes on one node.

Read from kubernetes `pkg/proxy/nftables/proxier.go` (setupNFTables, syncProxyRules,
writeServiceToEndpointRules) and the expected rulesets of its `proxier_test.go`; the
lines are those of kube-proxy's own transaction (`add table/chain/set/map/rule/element`),
so `nft -f` takes them as they are. v1.36 changed the shape (no mark-for-masquerade chain,
a hairpin set, DNAT through a numgen map); netlab follows v1.33-1.35.
LoadBalancer, externalIPs and loadBalancerSourceRanges are not modelled (netlab has no
load balancer), so the firewall-ips map stays empty as it does on such a cluster.
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network

TABLE = "kube-proxy"
MASQ_MARK = "0x4000"
MARK_MASQ_CHAIN = "mark-for-masquerade"
REJECT_CHAIN = "reject-chain"


def chain_hash(name: str, length: int = 8) -> str:
    """kube-proxy's hash of a chain name: the first `length` characters of base32(sha256(name));
    8 in nftables mode (hashAndTruncate), 16 in iptables mode (portProtoHash and friends)."""
    return base64.b32encode(hashlib.sha256(name.encode()).digest())[:length].decode()


@dataclass(frozen=True)
class Endpoint:
    """One ready endpoint of a Service port (IP:port), with its pod's node (for the Local traffic policies)."""

    ip: IPv4Address
    port: int
    node: str = ""
    pod: str = ""   # ns/name, for status

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class ServicePortRules:
    """One Service port as kube-proxy sees it (a servicePortInfo plus its endpoints)."""

    namespace: str
    name: str
    port_name: str
    protocol: str          # "tcp" | "udp" | "sctp"
    cluster_ip: IPv4Address
    port: int
    endpoints: tuple[Endpoint, ...] = ()
    node_port: int | None = None
    affinity_timeout: int | None = None   # seconds, when sessionAffinity is ClientIP
    internal_local: bool = False
    external_local: bool = False

    @property
    def base(self) -> str:
        return f"{self.namespace}/{self.name}/{self.protocol}/{self.port_name}"

    @property
    def name_string(self) -> str:
        """ServicePortName.String(): `ns/name:port` (no `:` for an unnamed port)."""
        return f"{self.namespace}/{self.name}" + (f":{self.port_name}" if self.port_name else "")

    def chain(self, prefix: str) -> str:
        return f"{prefix}-{chain_hash(self.base)}-{self.base}"

    def endpoint_chain(self, ep: Endpoint, prefix: str = "endpoint") -> str:
        name = f"{self.base}__{ep.ip}/{ep.port}"
        return f"{prefix}-{chain_hash(name)}-{name}"


@dataclass(frozen=True)
class NodeProxy:
    """What kube-proxy on one node knows: its name and NodePort addresses, the cluster's CIDRs."""

    node: str
    cluster_cidr: IPv4Network            # the local-traffic detector (detect-local-mode ClusterCIDR)
    service_cidr: IPv4Network
    nodeport_ips: tuple[IPv4Address, ...]
    services: tuple[ServicePortRules, ...] = field(default_factory=tuple)


def base_rules(proxy: NodeProxy) -> list[str]:
    """setupNFTables: the table, its sets and maps, base chains and their fixed rules."""
    t = f"ip {TABLE}"
    lines = [
        f'add table {t} {{ comment "rules for kube-proxy" ; }}',
        f'add set {t} cluster-ips {{ type ipv4_addr ; comment "Active ClusterIPs" ; }}',
        f'add set {t} nodeport-ips {{ type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }}',
        f'add map {t} firewall-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; '
        f'comment "destinations that are subject to LoadBalancerSourceRanges" ; }}',
        f'add map {t} no-endpoint-nodeports {{ type inet_proto . inet_service : verdict ; '
        f'comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }}',
        f'add map {t} no-endpoint-services {{ type ipv4_addr . inet_proto . inet_service : verdict ; '
        f'comment "vmap to drop or reject packets to services with no endpoints" ; }}',
        f'add map {t} service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; '
        f'comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }}',
        f'add map {t} service-nodeports {{ type inet_proto . inet_service : verdict ; '
        f'comment "NodePort traffic" ; }}',
        f"add chain {t} cluster-ips-check",
        f"add chain {t} filter-prerouting-pre-dnat {{ type filter hook prerouting priority -110 ; }}",
        f"add chain {t} filter-output-pre-dnat {{ type filter hook output priority -110 ; }}",
        f"add chain {t} filter-forward {{ type filter hook forward priority 0 ; }}",
        f"add chain {t} filter-input {{ type filter hook input priority 0 ; }}",
        f"add chain {t} filter-output {{ type filter hook output priority 0 ; }}",
        f"add chain {t} firewall-check",
        f"add chain {t} {MARK_MASQ_CHAIN}",
        f"add chain {t} masquerading",
        f"add chain {t} nat-output {{ type nat hook output priority -100 ; }}",
        f"add chain {t} nat-postrouting {{ type nat hook postrouting priority 100 ; }}",
        f"add chain {t} nat-prerouting {{ type nat hook prerouting priority -100 ; }}",
        f"add chain {t} nodeport-endpoints-check",
        f'add chain {t} {REJECT_CHAIN} {{ comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }}',
        f"add chain {t} services",
        f"add chain {t} service-endpoints-check",
        f'add rule {t} cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of '
        f'ClusterIPs"',
        f'add rule {t} cluster-ips-check ip daddr {{ {proxy.service_cidr} }} drop comment "Drop traffic to '
        f'unallocated ClusterIPs"',
        f"add rule {t} filter-prerouting-pre-dnat ct state new jump firewall-check",
        f"add rule {t} filter-forward ct state new jump service-endpoints-check",
        f"add rule {t} filter-forward ct state new jump cluster-ips-check",
        f"add rule {t} filter-input ct state new jump nodeport-endpoints-check",
        f"add rule {t} filter-input ct state new jump service-endpoints-check",
        f"add rule {t} filter-output ct state new jump service-endpoints-check",
        f"add rule {t} filter-output-pre-dnat ct state new jump firewall-check",
        f"add rule {t} filter-output ct state new jump cluster-ips-check",
        f"add rule {t} firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips",
        f"add rule {t} {MARK_MASQ_CHAIN} mark set mark or {MASQ_MARK}",
        f"add rule {t} masquerading mark and {MASQ_MARK} == 0 return",
        f"add rule {t} masquerading mark set mark xor {MASQ_MARK}",
        f"add rule {t} masquerading masquerade fully-random",
        f"add rule {t} nat-output jump services",
        f"add rule {t} nat-postrouting jump masquerading",
        f"add rule {t} nat-prerouting jump services",
        f"add rule {t} nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap "
        f"@no-endpoint-nodeports",
        f"add rule {t} {REJECT_CHAIN} reject",
        f"add rule {t} services ip daddr . meta l4proto . th dport vmap @service-ips",
        f"add rule {t} services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports",
    ]
    for ip in proxy.nodeport_ips:
        lines.append(f"add element {t} nodeport-ips {{ {ip} }}")
    lines.append(f"add rule {t} service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services")
    return lines


def service_rules(proxy: NodeProxy, svc: ServicePortRules) -> list[str]:
    """syncProxyRules for one service port on `proxy.node`."""
    t = f"ip {TABLE}"
    endpoints = sorted(svc.endpoints, key=lambda e: (int(e.ip), e.port))
    local = [e for e in endpoints if e.node == proxy.node]
    has_endpoints = bool(endpoints)
    service_chain, local_chain = svc.chain("service"), svc.chain("local")
    external_chain = svc.chain("external")
    externally = svc.node_port is not None
    # servicePortInfo.UsesClusterEndpoints / UsesLocalEndpoints
    uses_cluster = has_endpoints and (not svc.internal_local or (externally and not svc.external_local))
    uses_local = bool(local) and (svc.internal_local or (externally and svc.external_local))
    reachable = [e for e in endpoints if uses_cluster or (uses_local and e in local)]
    internal_chain, has_internal = service_chain, has_endpoints
    if svc.internal_local:
        internal_chain, has_internal = local_chain, bool(local)
    external_policy_chain, has_external = service_chain, has_endpoints
    if svc.external_local:
        external_policy_chain, has_external = local_chain, bool(local)
    uses_external = has_endpoints and externally
    internal_verdict = external_verdict = ""
    if not has_endpoints:
        internal_verdict = external_verdict = f"goto {REJECT_CHAIN}"
    else:
        internal_verdict = "" if has_internal else "drop"
        external_verdict = "" if has_external else "drop"
    proto, key = svc.protocol, f"{svc.cluster_ip} . {svc.protocol} . {svc.port}"
    comment = f'comment "{svc.name_string}"'
    lines: list[str] = []
    sets: list[str] = []
    chains: list[str] = []
    if uses_cluster:
        chains.append(service_chain)
    if uses_local:
        chains.append(local_chain)
    if uses_external:
        chains.append(external_chain)
    chains += [svc.endpoint_chain(e) for e in reachable]
    elements = [f"add element {t} cluster-ips {{ {svc.cluster_ip} }}"]
    if has_internal:
        elements.append(f"add element {t} service-ips {{ {key} : goto {internal_chain} }}")
    else:
        elements.append(f"add element {t} no-endpoint-services {{ {key} {comment} : {internal_verdict} }}")
    if externally:
        if has_endpoints:
            elements.append(f"add element {t} service-nodeports {{ {proto} . {svc.node_port} : goto {external_chain} }}")
        if not has_external:
            elements.append(f"add element {t} no-endpoint-nodeports {{ {proto} . {svc.node_port} {comment} : "
                            f"{external_verdict} }}")
    if has_internal:
        lines.append(f"add rule {t} {internal_chain} ip daddr {svc.cluster_ip} ip saddr != {proxy.cluster_cidr} "
                     f"jump {MARK_MASQ_CHAIN}")
    if uses_external:
        if not svc.external_local:
            lines.append(f"add rule {t} {external_chain} jump {MARK_MASQ_CHAIN}")
        else:
            lines.append(f'add rule {t} {external_chain} ip saddr {proxy.cluster_cidr} goto {service_chain} '
                         f'comment "short-circuit pod traffic"')
            lines.append(f'add rule {t} {external_chain} fib saddr type local jump {MARK_MASQ_CHAIN} '
                         f'comment "masquerade local traffic"')
            lines.append(f'add rule {t} {external_chain} fib saddr type local goto {service_chain} '
                         f'comment "short-circuit local traffic"')
        if has_external:
            lines.append(f"add rule {t} {external_chain} goto {external_policy_chain}")
    if svc.affinity_timeout is not None:
        for ep in reachable:
            sets.append(f"add set {t} {svc.endpoint_chain(ep, 'affinity')} {{ type ipv4_addr ; "
                        f"flags dynamic,timeout ; timeout {svc.affinity_timeout}s ; }}")
    if uses_cluster:
        lines += _to_endpoints(t, svc, service_chain, endpoints)
    if uses_local:
        lines += _to_endpoints(t, svc, local_chain, local)
    for ep in reachable:
        chain = svc.endpoint_chain(ep)
        lines.append(f"add rule {t} {chain} ip saddr {ep.ip} jump {MARK_MASQ_CHAIN}")
        if svc.affinity_timeout is not None:
            lines.append(f"add rule {t} {chain} update @{svc.endpoint_chain(ep, 'affinity')} {{ ip saddr }}")
        lines.append(f"add rule {t} {chain} meta l4proto {proto} dnat to {ep}")
    return sets + [f"add chain {t} {c}" for c in chains] + lines + elements


def _to_endpoints(t: str, svc: ServicePortRules, chain: str, endpoints: list[Endpoint]) -> list[str]:
    """writeServiceToEndpointRules: affinity matches first, then `numgen random mod N`."""
    lines = []
    if svc.affinity_timeout is not None:
        for ep in endpoints:
            lines.append(f"add rule {t} {chain} ip saddr @{svc.endpoint_chain(ep, 'affinity')} "
                         f"goto {svc.endpoint_chain(ep)}")
    vmap = " , ".join(f"{i} : goto {svc.endpoint_chain(ep)}" for i, ep in enumerate(endpoints))
    lines.append(f"add rule {t} {chain} numgen random mod {len(endpoints)} vmap {{ {vmap} }}")
    return lines


def ruleset(proxy: NodeProxy) -> str:
    """The node's whole kube-proxy table as one `nft -f` script, replacing any previous one atomically."""
    lines = base_rules(proxy)
    for svc in proxy.services:
        lines += service_rules(proxy, svc)
    # add-then-delete makes the delete valid whether or not the table exists; all in one transaction
    prologue = [f"add table ip {TABLE}", f"delete table ip {TABLE}"]
    return "\n".join(prologue + lines) + "\n"
