"""kube-proxy nftables mode: netlab's ruleset against kube-proxy's own expectations.

The expected lines are those of kubernetes `pkg/proxy/nftables/proxier_test.go`
(v1.33-1.35): `baseRules` and `TestOverallNFTablesRules`, with its fake proxier's inputs
(pod CIDR 10.0.0.0/8, service CIDR 172.30.0.0/16, node IP 192.168.0.2, node
"test-node"). netlab models no LoadBalancer and no externalIPs, so the fixture keeps that
test's services without them: svc1 (ClusterIP), svc3 (NodePort), svc4's two endpoints as
a ClusterIP, svc5's ClientIP affinity as a NodePort, svc6 (no endpoints); the lines of the
LoadBalancer IPs, externalIPs and source ranges are left out, every other line is the
test's own. Compared as sets of lines: kube-proxy's test does the same (nft orders them).
"""
from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from netlab.core import kubeproxy
from netlab.core.kubeproxy import Endpoint, NodeProxy, ServicePortRules

BASE_RULES = """
add table ip kube-proxy { comment "rules for kube-proxy" ; }

add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
add set ip kube-proxy nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }

add map ip kube-proxy firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }
add map ip kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }
add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }
add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }

add chain ip kube-proxy cluster-ips-check
add chain ip kube-proxy filter-prerouting-pre-dnat { type filter hook prerouting priority -110 ; }
add chain ip kube-proxy filter-output-pre-dnat { type filter hook output priority -110 ; }
add chain ip kube-proxy filter-forward { type filter hook forward priority 0 ; }
add chain ip kube-proxy filter-input { type filter hook input priority 0 ; }
add chain ip kube-proxy filter-output { type filter hook output priority 0 ; }
add chain ip kube-proxy firewall-check
add chain ip kube-proxy mark-for-masquerade
add chain ip kube-proxy masquerading
add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }
add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
add chain ip kube-proxy nodeport-endpoints-check
add chain ip kube-proxy reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }
add chain ip kube-proxy services
add chain ip kube-proxy service-endpoints-check

add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
add rule ip kube-proxy cluster-ips-check ip daddr { 172.30.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"
add rule ip kube-proxy filter-prerouting-pre-dnat ct state new jump firewall-check
add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check
add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check
add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check
add rule ip kube-proxy filter-input ct state new jump service-endpoints-check
add rule ip kube-proxy filter-output ct state new jump service-endpoints-check
add rule ip kube-proxy filter-output-pre-dnat ct state new jump firewall-check
add rule ip kube-proxy filter-output ct state new jump cluster-ips-check
add rule ip kube-proxy firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips
add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000
add rule ip kube-proxy masquerading mark and 0x4000 == 0 return
add rule ip kube-proxy masquerading mark set mark xor 0x4000
add rule ip kube-proxy masquerading masquerade fully-random
add rule ip kube-proxy nat-output jump services
add rule ip kube-proxy nat-postrouting jump masquerading
add rule ip kube-proxy nat-prerouting jump services
add rule ip kube-proxy nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
add rule ip kube-proxy reject-chain reject
add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports

add element ip kube-proxy nodeport-ips { 192.168.0.2 }
add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services
"""

OVERALL = """
# svc1
add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 }

add chain ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80
add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 ip saddr 10.180.0.1 jump mark-for-masquerade
add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 meta l4proto tcp dnat to 10.180.0.1:80

add element ip kube-proxy cluster-ips { 172.30.0.41 }
add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }

# svc3
add chain ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80
add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 ip daddr 172.30.0.43 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 }
add chain ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80
add rule ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80 jump mark-for-masquerade
add rule ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80 goto service-4AT6LBPK-ns3/svc3/tcp/p80
add chain ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80
add rule ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
add rule ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80

add element ip kube-proxy cluster-ips { 172.30.0.43 }
add element ip kube-proxy service-ips { 172.30.0.43 . tcp . 80 : goto service-4AT6LBPK-ns3/svc3/tcp/p80 }
add element ip kube-proxy service-nodeports { tcp . 3003 : goto external-4AT6LBPK-ns3/svc3/tcp/p80 }

# svc4 (without its externalIP)
add chain ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80
add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 ip daddr 172.30.0.44 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 numgen random mod 2 vmap { 0 : goto endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 , 1 : goto endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 }
add chain ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80
add rule ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 ip saddr 10.180.0.5 jump mark-for-masquerade
add rule ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 meta l4proto tcp dnat to 10.180.0.5:80
add chain ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80
add rule ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 ip saddr 10.180.0.4 jump mark-for-masquerade
add rule ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 meta l4proto tcp dnat to 10.180.0.4:80

add element ip kube-proxy cluster-ips { 172.30.0.44 }
add element ip kube-proxy service-ips { 172.30.0.44 . tcp . 80 : goto service-LAUZTJTB-ns4/svc4/tcp/p80 }

# svc5 (without its LoadBalancer IP and source ranges)
add set ip kube-proxy affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }
add chain ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80
add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 ip daddr 172.30.0.45 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 }
add chain ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80
add rule ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80 jump mark-for-masquerade
add rule ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80 goto service-HVFWP5L3-ns5/svc5/tcp/p80

add chain ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 update @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { ip saddr }
add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80

add element ip kube-proxy cluster-ips { 172.30.0.45 }
add element ip kube-proxy service-ips { 172.30.0.45 . tcp . 80 : goto service-HVFWP5L3-ns5/svc5/tcp/p80 }
add element ip kube-proxy service-nodeports { tcp . 3002 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }

# svc6
add element ip kube-proxy cluster-ips { 172.30.0.46 }
add element ip kube-proxy no-endpoint-services { 172.30.0.46 . tcp . 80 comment "ns6/svc6:p80" : goto reject-chain }
"""


def lines(text: str) -> list[str]:
    return sorted(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def fake_proxier(*services: ServicePortRules) -> NodeProxy:
    """NewFakeProxier's settings."""
    return NodeProxy("test-node", IPv4Network("10.0.0.0/8"), IPv4Network("172.30.0.0/16"),
                     (IPv4Address("192.168.0.2"),), services)


def svc(ns: str, name: str, ip: str, *eps: str, **kw) -> ServicePortRules:
    return ServicePortRules(ns, name, "p80", "tcp", IPv4Address(ip), 80,
                            tuple(Endpoint(IPv4Address(e), 80) for e in eps), **kw)


def generated(proxy: NodeProxy) -> list[str]:
    text = kubeproxy.ruleset(proxy)
    body = text.split("\n", 2)[2]   # past the add/delete prologue that makes the replace atomic
    return lines(body)


def test_base_rules_match_kube_proxy():
    assert generated(fake_proxier()) == lines(BASE_RULES)


def test_overall_rules_match_kube_proxy():
    proxy = fake_proxier(
        svc("ns1", "svc1", "172.30.0.41", "10.180.0.1"),
        svc("ns3", "svc3", "172.30.0.43", "10.180.0.3", node_port=3003),
        svc("ns4", "svc4", "172.30.0.44", "10.180.0.5", "10.180.0.4"),
        svc("ns5", "svc5", "172.30.0.45", "10.180.0.3", node_port=3002, affinity_timeout=10800),
        svc("ns6", "svc6", "172.30.0.46"))
    got, want = generated(proxy), lines(BASE_RULES + OVERALL)
    assert [l for l in got if l not in want] == []
    assert [l for l in want if l not in got] == []


@pytest.mark.parametrize("name, expected", [
    ("ns1/svc1/tcp/p80", "ULMVA6XW"), ("default/web/tcp/http", "SUSTUHLJ"),
    ("default/web/tcp/http__172.16.1.5/8080", "VFDY7PK3")])
def test_chain_hash(name, expected):
    assert kubeproxy.chain_hash(name) == expected


def test_local_external_policy_without_local_endpoint_drops_nodeport():
    """TestOverallNFTablesRules' svc2 shape: ETP Local, its only endpoint elsewhere."""
    rules = svc("ns2", "svc2", "172.30.0.42", node_port=3001, external_local=True)
    rules = ServicePortRules(**{**rules.__dict__, "endpoints": (Endpoint(IPv4Address("10.180.0.2"), 80, "node2"),)})
    got = kubeproxy.service_rules(fake_proxier(), rules)
    assert 'add element ip kube-proxy no-endpoint-nodeports { tcp . 3001 comment "ns2/svc2:p80" : drop }' in got
    assert ('add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 ip saddr 10.0.0.0/8 goto '
            'service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit pod traffic"') in got
    assert not any(line.endswith("goto local-42NFTM6N-ns2/svc2/tcp/p80") for line in got)


def test_local_external_policy_with_local_endpoint_goes_to_local_chain():
    rules = svc("ns2", "svc2", "172.30.0.42", node_port=3001, external_local=True)
    rules = ServicePortRules(**{**rules.__dict__, "endpoints": (
        Endpoint(IPv4Address("10.180.0.2"), 80, "node2"), Endpoint(IPv4Address("10.180.0.9"), 80, "test-node"))})
    got = kubeproxy.service_rules(fake_proxier(), rules)
    local = "local-42NFTM6N-ns2/svc2/tcp/p80"
    assert f"add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 goto {local}" in got
    vmap = [l for l in got if l.startswith(f"add rule ip kube-proxy {local} numgen")]
    assert len(vmap) == 1 and "mod 1 " in vmap[0] and "10.180.0.9/80" in vmap[0]


def test_internal_traffic_policy_local():
    """ClusterIP traffic only to this node's endpoints; none here: dropped (no-endpoint-services ... drop)."""
    eps = (Endpoint(IPv4Address("10.180.0.1"), 80, "test-node"), Endpoint(IPv4Address("10.180.2.1"), 80, "node2"))
    rules = ServicePortRules("ns1", "svc1", "p80", "tcp", IPv4Address("172.30.0.41"), 80, eps, internal_local=True)
    got = kubeproxy.service_rules(fake_proxier(), rules)
    local = "local-ULMVA6XW-ns1/svc1/tcp/p80"
    assert f"add element ip kube-proxy service-ips {{ 172.30.0.41 . tcp . 80 : goto {local} }}" in got
    assert not any("service-ULMVA6XW" in line for line in got)   # no cluster chain: nothing uses it
    assert not any("10.180.2.1" in line for line in got)
    elsewhere = ServicePortRules(**{**rules.__dict__, "endpoints": eps[1:]})
    got = kubeproxy.service_rules(fake_proxier(), elsewhere)
    assert ('add element ip kube-proxy no-endpoint-services { 172.30.0.41 . tcp . 80 comment "ns1/svc1:p80" : drop }'
            in got)
