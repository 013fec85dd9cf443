"""kube-proxy's iptables mode, pure: the nat and filter tables kube-proxy writes on one node.

Read from kubernetes `pkg/proxy/iptables/proxier.go` (syncProxyRules, writeServiceToEndpointRules,
the chain-name helpers) and the expected `iptables-save` outputs of its `proxier_test.go`. The
input is the same NodeProxy the nftables generator takes, so both modes proxy the same
Services to the same endpoints. The text is one `iptables-restore` input holding `*filter` and
`*nat`, each with its built-in chains' jumps into the KUBE-* chains (what kube-proxy ensures
with `iptables -C/-I` once at start-up), so restoring it replaces both tables atomically.
LoadBalancer, externalIPs and health-check NodePorts are not modelled (netlab has none), so
KUBE-PROXY-FIREWALL stays empty, as on such a cluster.
"""
from __future__ import annotations


from .kubeproxy import MASQ_MARK, Endpoint, NodeProxy, ServicePortRules, chain_hash

KUBE_SERVICES = "KUBE-SERVICES"
KUBE_EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES"
KUBE_NODEPORTS = "KUBE-NODEPORTS"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"
KUBE_FORWARD = "KUBE-FORWARD"
KUBE_PROXY_FIREWALL = "KUBE-PROXY-FIREWALL"


def _hash(text: str) -> str:
    """The first 16 characters of base32(sha256(text)), as portProtoHash and friends cut them."""
    return chain_hash(text, 16)


def port_proto_hash(svc: ServicePortRules) -> str:
    """portProtoHash: over ServicePortName.String() followed by the lower-case protocol."""
    return _hash(svc.name_string + svc.protocol)


def service_chain(svc: ServicePortRules, prefix: str = "KUBE-SVC") -> str:
    """KUBE-SVC (cluster policy), KUBE-SVL (local policy), KUBE-EXT (external traffic)."""
    return f"{prefix}-{port_proto_hash(svc)}"


def endpoint_chain(svc: ServicePortRules, ep: Endpoint) -> str:
    """servicePortEndpointChainName: KUBE-SEP- and the hash of name, protocol and `ip:port`."""
    return "KUBE-SEP-" + _hash(svc.name_string + svc.protocol + str(ep))


def probability(n: int) -> str:
    return f"{1.0 / n:0.10f}"


def _chain_line(chain: str) -> str:
    return f":{chain} - [0:0]"


def _jumps() -> tuple[list[str], list[str]]:
    """The built-in chains' jumps into kube-proxy's chains (iptablesJumpChains), filter then nat."""
    new = "-m conntrack --ctstate NEW"
    firewall = f'{new} -m comment --comment "kubernetes load balancer firewall" -j {KUBE_PROXY_FIREWALL}'
    external = f'{new} -m comment --comment "kubernetes externally-visible service portals" -j {KUBE_EXTERNAL_SERVICES}'
    filter_jumps = [
        f"-A INPUT {firewall}",
        f'-A INPUT -m comment --comment "kubernetes health check service ports" -j {KUBE_NODEPORTS}',
        f"-A INPUT {external}",
        f"-A FORWARD {firewall}",
        f'-A FORWARD -m comment --comment "kubernetes forwarding rules" -j {KUBE_FORWARD}',
        f'-A FORWARD {new} -m comment --comment "kubernetes service portals" -j {KUBE_SERVICES}',
        f"-A FORWARD {external}",
        f"-A OUTPUT {firewall}",
        f'-A OUTPUT {new} -m comment --comment "kubernetes service portals" -j {KUBE_SERVICES}',
    ]
    portals = f'-m comment --comment "kubernetes service portals" -j {KUBE_SERVICES}'
    nat_jumps = [
        f"-A PREROUTING {portals}",
        f"-A OUTPUT {portals}",
        f'-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j {KUBE_POSTROUTING}',
    ]
    return filter_jumps, nat_jumps


def _sorted(endpoints) -> list[Endpoint]:
    """The endpoints map's order: by the `ip:port` string (kube-proxy sorts them so for diffing)."""
    return sorted(endpoints, key=str)


def _to_endpoints(svc: ServicePortRules, chain: str, endpoints: list[Endpoint]) -> list[str]:
    """writeServiceToEndpointRules: affinity checks first, then one statistic match per endpoint."""
    rules = []
    if svc.affinity_timeout is not None:
        for ep in endpoints:
            sep = endpoint_chain(svc, ep)
            rules.append(f'-A {chain} -m comment --comment "{svc.name_string} -> {ep}" -m recent --name {sep} '
                         f"--rcheck --seconds {svc.affinity_timeout} --reap -j {sep}")
    n = len(endpoints)
    for i, ep in enumerate(endpoints):
        match = f" -m statistic --mode random --probability {probability(n - i)}" if i < n - 1 else ""
        rules.append(f'-A {chain} -m comment --comment "{svc.name_string} -> {ep}"{match} -j {endpoint_chain(svc, ep)}')
    return rules


def service_rules(proxy: NodeProxy, svc: ServicePortRules) -> tuple[list[str], list[str], list[str], list[str]]:
    """syncProxyRules for one service port: (nat chains, nat rules, filter rules, nodeport nat rules)."""
    name, proto = svc.name_string, svc.protocol
    endpoints = _sorted(svc.endpoints)
    local = [e for e in endpoints if e.node == proxy.node]
    externally = svc.node_port is not None
    cluster_chain, local_chain, ext_chain = service_chain(svc), service_chain(svc, "KUBE-SVL"), \
        service_chain(svc, "KUBE-EXT")
    # servicePortInfo.UsesClusterEndpoints / UsesLocalEndpoints, CategorizeEndpoints
    uses_cluster_eps = not svc.internal_local or (externally and not svc.external_local)
    uses_local_eps = svc.internal_local or (externally and svc.external_local)
    cluster_eps = endpoints if uses_cluster_eps else []
    local_eps = local if uses_local_eps else []
    reachable = [e for e in endpoints if e in cluster_eps or e in local_eps]
    has_endpoints = bool(reachable)
    internal_chain, has_internal = (local_chain, bool(local_eps)) if svc.internal_local \
        else (cluster_chain, bool(cluster_eps))
    external_policy, has_external = (local_chain, bool(local_eps)) if svc.external_local \
        else (cluster_chain, bool(cluster_eps))
    uses_cluster_chain = bool(cluster_eps)
    uses_local_chain = bool(local_eps)
    uses_ext_chain = has_endpoints and externally
    if not has_endpoints:
        internal_target = external_target = "REJECT"
        internal_comment = external_comment = f'"{name} has no endpoints"'
    else:
        internal_target = external_target = "ACCEPT"
        internal_comment = external_comment = ""
        if not has_internal:
            internal_target, internal_comment = "DROP", f'"{name} has no local endpoints"'
        if not has_external:
            external_target, external_comment = "DROP", f'"{name} has no local endpoints"'
    dest = f"-m {proto} -p {proto} -d {svc.cluster_ip} --dport {svc.port}"
    chains: list[str] = []
    nat: list[str] = []
    filt: list[str] = []
    nodeports: list[str] = []
    # capture the ClusterIP
    if has_internal:
        nat.append(f'-A {KUBE_SERVICES} -m comment --comment "{name} cluster IP" {dest} -j {internal_chain}')
    else:
        filt.append(f"-A {KUBE_SERVICES} -m comment --comment {internal_comment} {dest} -j {internal_target}")
    # capture the NodePort
    if externally:
        if has_endpoints:
            nodeports.append(f"-A {KUBE_NODEPORTS} -m comment --comment {name} -m {proto} -p {proto} "
                             f"--dport {svc.node_port} -j {ext_chain}")
        if not has_external:
            filt.append(f"-A {KUBE_EXTERNAL_SERVICES} -m comment --comment {external_comment} -m addrtype "
                        f"--dst-type LOCAL -m {proto} -p {proto} --dport {svc.node_port} -j {external_target}")
    # internal traffic: masquerade what does not come from a pod (detect-local-mode ClusterCIDR)
    if has_internal:
        nat.append(f'-A {internal_chain} -m comment --comment "{name} cluster IP" {dest} '
                   f"! -s {proxy.cluster_cidr} -j {KUBE_MARK_MASQ}")
    # external traffic
    if uses_ext_chain:
        chains.append(ext_chain)
        if not svc.external_local:
            nat.append(f'-A {ext_chain} -m comment --comment "masquerade traffic for {name} external destinations" '
                       f"-j {KUBE_MARK_MASQ}")
        else:
            nat.append(f'-A {ext_chain} -m comment --comment "pod traffic for {name} external destinations" '
                       f"-s {proxy.cluster_cidr} -j {cluster_chain}")
            nat.append(f'-A {ext_chain} -m comment --comment "masquerade LOCAL traffic for {name} external '
                       f'destinations" -m addrtype --src-type LOCAL -j {KUBE_MARK_MASQ}')
            nat.append(f'-A {ext_chain} -m comment --comment "route LOCAL traffic for {name} external '
                       f'destinations" -m addrtype --src-type LOCAL -j {cluster_chain}')
        if has_external:
            nat.append(f"-A {ext_chain} -j {external_policy}")
    if uses_cluster_chain:
        chains.append(cluster_chain)
        nat += _to_endpoints(svc, cluster_chain, cluster_eps)
    if uses_local_chain:
        chains.append(local_chain)
        nat += _to_endpoints(svc, local_chain, local_eps)
    for ep in reachable:
        sep = endpoint_chain(svc, ep)
        chains.append(sep)
        nat.append(f"-A {sep} -m comment --comment {name} -s {ep.ip} -j {KUBE_MARK_MASQ}")
        recent = f" -m recent --name {sep} --set" if svc.affinity_timeout is not None else ""
        nat.append(f"-A {sep} -m comment --comment {name}{recent} -m {proto} -p {proto} -j DNAT "
                   f"--to-destination {ep}")
    return chains, nat, filt, nodeports


def ruleset(proxy: NodeProxy) -> str:
    """The node's filter and nat tables as one `iptables-restore` input (replacing both tables)."""
    filter_jumps, nat_jumps = _jumps()
    nat_chains, nat_rules, filter_rules, nodeport_rules = [], [], [], []
    for svc in proxy.services:
        chains, nat, filt, nodeports = service_rules(proxy, svc)
        nat_chains += chains
        nat_rules += nat
        filter_rules += filt
        nodeport_rules += nodeports
    filter_table = [
        "*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
        *(_chain_line(c) for c in (KUBE_NODEPORTS, KUBE_SERVICES, KUBE_EXTERNAL_SERVICES, KUBE_FORWARD,
                                   KUBE_PROXY_FIREWALL)),
        *filter_jumps,
        f"-A {KUBE_FORWARD} -m conntrack --ctstate INVALID -j DROP",
        f'-A {KUBE_FORWARD} -m comment --comment "kubernetes forwarding rules" -m mark --mark '
        f"{MASQ_MARK}/{MASQ_MARK} -j ACCEPT",
        f'-A {KUBE_FORWARD} -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack '
        f"--ctstate RELATED,ESTABLISHED -j ACCEPT",
        *filter_rules,
        "COMMIT",
    ]
    nodeports_comment = '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in ' \
                        'this chain"'
    nat_table = [
        "*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":POSTROUTING ACCEPT [0:0]",
        *(_chain_line(c) for c in (KUBE_NODEPORTS, KUBE_SERVICES, KUBE_MARK_MASQ, KUBE_POSTROUTING)),
        *(_chain_line(c) for c in nat_chains),
        *nat_jumps,
        f"-A {KUBE_POSTROUTING} -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN",
        f"-A {KUBE_POSTROUTING} -j MARK --xor-mark {MASQ_MARK}",
        f'-A {KUBE_POSTROUTING} -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE '
        f"--random-fully",
        f"-A {KUBE_MARK_MASQ} -j MARK --or-mark {MASQ_MARK}",
        *nodeport_rules,
        *nat_rules,
        # last in KUBE-SERVICES: the NodePort addresses (--nodeport-addresses; none given: every local address)
        *(f"-A {KUBE_SERVICES} {nodeports_comment} -d {ip} -j {KUBE_NODEPORTS}" for ip in proxy.nodeport_ips),
        *([f"-A {KUBE_SERVICES} {nodeports_comment} -m addrtype --dst-type LOCAL -j {KUBE_NODEPORTS}"]
          if not proxy.nodeport_ips else []),
        "COMMIT",
    ]
    return "\n".join(filter_table + nat_table) + "\n"
