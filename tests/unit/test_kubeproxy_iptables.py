"""kube-proxy iptables mode: netlab's nat and filter tables against kube-proxy's own expectations.

The expected lines are those of kubernetes `pkg/proxy/iptables/proxier_test.go`,
`TestOverallIPTablesRules`, with its fake proxier's inputs (pod CIDR 10.0.0.0/8, node
"test-node", no --nodeport-addresses so NodePorts match every local address). netlab models
no LoadBalancer, externalIPs or health-check NodePorts, so the fixture keeps that test's
services without them: svc1 (ClusterIP), svc2 (NodePort 3001, externalTrafficPolicy Local, its
one endpoint on another node), svc3 (NodePort 3003), svc4's two endpoints as a ClusterIP, svc5
(NodePort 3002, ClientIP affinity 10800 s), svc6 (no endpoints). The lines of the LoadBalancer
IPs, external IPs, source ranges, health-check port, localhost NodePorts and kubelet's
KUBE-FIREWALL are left out; the test's fake has nfacct counters and no --random-fully, a
Debian node has the reverse, so those two lines are written as kube-proxy writes them there.
Compared chain by chain, in order within each chain; KUBE-SERVICES, KUBE-NODEPORTS and
KUBE-EXTERNAL-SERVICES as sets (kube-proxy's test sorts them by service name too).
"""
from __future__ import annotations

from collections import defaultdict
from ipaddress import IPv4Address, IPv4Network

from netlab.core import kubeproxy_iptables as ipt
from netlab.core.kubeproxy import Endpoint, NodeProxy, ServicePortRules

EXPECTED = r"""
*filter
:KUBE-NODEPORTS - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
-A KUBE-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT
-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 3001 -j DROP
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
*nat
:KUBE-NODEPORTS - [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-EXT-GNZBNJ2PO5MGZ6GT - [0:0]
:KUBE-EXT-NUKIZ6OKUXPJNT4C - [0:0]
:KUBE-EXT-X27LE4BHSL4DOUIK - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SEP-C6EBXVWJJZMIWKLZ - [0:0]
:KUBE-SEP-I77PXRDZVX7PMWMN - [0:0]
:KUBE-SEP-OYPFS5VJICHGATKP - [0:0]
:KUBE-SEP-RS4RBKLTHTF2IUXJ - [0:0]
:KUBE-SEP-SXIVWICOYRO3J4NJ - [0:0]
:KUBE-SEP-UKSFD7AGPMPPLUHC - [0:0]
:KUBE-SVC-4SW47YFZTEDKD3PK - [0:0]
:KUBE-SVC-GNZBNJ2PO5MGZ6GT - [0:0]
:KUBE-SVC-NUKIZ6OKUXPJNT4C - [0:0]
:KUBE-SVC-X27LE4BHSL4DOUIK - [0:0]
:KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
-A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j KUBE-EXT-GNZBNJ2PO5MGZ6GT
-A KUBE-NODEPORTS -m comment --comment ns3/svc3:p80 -m tcp -p tcp --dport 3003 -j KUBE-EXT-X27LE4BHSL4DOUIK
-A KUBE-NODEPORTS -m comment --comment ns5/svc5:p80 -m tcp -p tcp --dport 3002 -j KUBE-EXT-NUKIZ6OKUXPJNT4C
-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j KUBE-SVC-XPGD46QRK7WJZT7O
-A KUBE-SERVICES -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
-A KUBE-SERVICES -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 -j KUBE-SVC-X27LE4BHSL4DOUIK
-A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
-A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 -j KUBE-SVC-NUKIZ6OKUXPJNT4C
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -s 10.0.0.0/8 -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ
-A KUBE-EXT-GNZBNJ2PO5MGZ6GT -m comment --comment "route LOCAL traffic for ns2/svc2:p80 external destinations" -m addrtype --src-type LOCAL -j KUBE-SVC-GNZBNJ2PO5MGZ6GT
-A KUBE-EXT-NUKIZ6OKUXPJNT4C -m comment --comment "masquerade traffic for ns5/svc5:p80 external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-NUKIZ6OKUXPJNT4C -j KUBE-SVC-NUKIZ6OKUXPJNT4C
-A KUBE-EXT-X27LE4BHSL4DOUIK -m comment --comment "masquerade traffic for ns3/svc3:p80 external destinations" -j KUBE-MARK-MASQ
-A KUBE-EXT-X27LE4BHSL4DOUIK -j KUBE-SVC-X27LE4BHSL4DOUIK
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully
-A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -s 10.180.0.5 -j KUBE-MARK-MASQ
-A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.5:80
-A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
-A KUBE-SEP-I77PXRDZVX7PMWMN -m comment --comment ns5/svc5:p80 -m recent --name KUBE-SEP-I77PXRDZVX7PMWMN --set -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
-A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -s 10.180.0.3 -j KUBE-MARK-MASQ
-A KUBE-SEP-OYPFS5VJICHGATKP -m comment --comment ns3/svc3:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.3:80
-A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -s 10.180.0.2 -j KUBE-MARK-MASQ
-A KUBE-SEP-RS4RBKLTHTF2IUXJ -m comment --comment ns2/svc2:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.2:80
-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ
-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80
-A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -s 10.180.0.4 -j KUBE-MARK-MASQ
-A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.4:80
-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.4:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-UKSFD7AGPMPPLUHC
-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.5:80" -j KUBE-SEP-C6EBXVWJJZMIWKLZ
-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 cluster IP" -m tcp -p tcp -d 172.30.0.42 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-GNZBNJ2PO5MGZ6GT -m comment --comment "ns2/svc2:p80 -> 10.180.0.2:80" -j KUBE-SEP-RS4RBKLTHTF2IUXJ
-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 cluster IP" -m tcp -p tcp -d 172.30.0.45 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -m recent --name KUBE-SEP-I77PXRDZVX7PMWMN --rcheck --seconds 10800 --reap -j KUBE-SEP-I77PXRDZVX7PMWMN
-A KUBE-SVC-NUKIZ6OKUXPJNT4C -m comment --comment "ns5/svc5:p80 -> 10.180.0.3:80" -j KUBE-SEP-I77PXRDZVX7PMWMN
-A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 cluster IP" -m tcp -p tcp -d 172.30.0.43 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-X27LE4BHSL4DOUIK -m comment --comment "ns3/svc3:p80 -> 10.180.0.3:80" -j KUBE-SEP-OYPFS5VJICHGATKP
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-XPGD46QRK7WJZT7O -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j KUBE-SEP-SXIVWICOYRO3J4NJ
COMMIT
"""

BUILT_IN = {"INPUT", "FORWARD", "OUTPUT", "PREROUTING", "POSTROUTING"}
UNORDERED = {"KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-EXTERNAL-SERVICES"}


def port(ns: str, name: str, ip: str, endpoints=(), **kw) -> ServicePortRules:
    return ServicePortRules(ns, name, "p80", "tcp", IPv4Address(ip), 80, tuple(endpoints), **kw)


def ep(ip: str, node: str = "") -> Endpoint:
    return Endpoint(IPv4Address(ip), 80, node)


FAKE = NodeProxy(
    node="test-node", cluster_cidr=IPv4Network("10.0.0.0/8"), service_cidr=IPv4Network("172.30.0.0/16"),
    nodeport_ips=(),
    services=(
        port("ns1", "svc1", "172.30.0.41", [ep("10.180.0.1")]),
        port("ns2", "svc2", "172.30.0.42", [ep("10.180.0.2")], node_port=3001, external_local=True),
        port("ns3", "svc3", "172.30.0.43", [ep("10.180.0.3")], node_port=3003),
        port("ns4", "svc4", "172.30.0.44", [ep("10.180.0.4"), ep("10.180.0.5", "test-node")]),
        port("ns5", "svc5", "172.30.0.45", [ep("10.180.0.3")], node_port=3002, affinity_timeout=10800),
        port("ns6", "svc6", "172.30.0.46"),
    ))


def tables(text: str) -> dict[str, tuple[set[str], dict[str, list[str]]]]:
    """table → (declared chains, chain → its rules in order); built-in chains left out."""
    out: dict[str, tuple[set[str], dict[str, list[str]]]] = {}
    chains: set[str] = set()
    rules: dict[str, list[str]] = defaultdict(list)
    for line in text.strip().splitlines():
        if line.startswith("*"):
            chains, rules = set(), defaultdict(list)
            out[line[1:]] = (chains, rules)
        elif line.startswith(":"):
            name = line[1:].split()[0]
            if name not in BUILT_IN:
                chains.add(name)
        elif line.startswith("-A "):
            chain = line.split()[1]
            if chain not in BUILT_IN:
                rules[chain].append(line)
    return out


def normalised(text: str):
    return {table: (chains, {c: sorted(r) if c in UNORDERED else r for c, r in rules.items()})
            for table, (chains, rules) in tables(text).items()}


def test_chain_names_are_kube_proxys_hashes():
    kubernetes = ServicePortRules("default", "kubernetes", "https", "tcp", IPv4Address("172.18.0.1"), 443)
    assert ipt.service_chain(kubernetes) == "KUBE-SVC-NPX46M4PTMTKRN6Y"
    svc1 = FAKE.services[0]
    assert ipt.service_chain(svc1, "KUBE-EXT") == "KUBE-EXT-XPGD46QRK7WJZT7O"
    assert ipt.endpoint_chain(svc1, svc1.endpoints[0]) == "KUBE-SEP-SXIVWICOYRO3J4NJ"


def test_probabilities_are_one_over_the_endpoints_left():
    assert [ipt.probability(n) for n in (3, 2)] == ["0.3333333333", "0.5000000000"]


def test_overall_rules_match_kube_proxys_expectation():
    got, want = normalised(ipt.ruleset(FAKE)), normalised(EXPECTED)
    assert got.keys() == want.keys() == {"filter", "nat"}
    for table in ("filter", "nat"):
        assert got[table][0] == want[table][0], table
        assert dict(got[table][1]) == dict(want[table][1]), table


def test_built_in_chains_jump_into_kube_proxys_chains():
    text = ipt.ruleset(FAKE)
    for line in ('-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
                 '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
                 '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
                 '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" '
                 '-j KUBE-SERVICES'):
        assert line in text.splitlines()
    assert text.count("COMMIT") == 2


def test_spread_over_three_endpoints_then_only_local_ones_for_internal_local():
    three = port("ns", "web", "172.30.0.50", [ep("10.180.0.9", "other"), ep("10.180.0.10", "test-node"),
                                                ep("10.180.0.11", "other")])
    proxy = NodeProxy("test-node", IPv4Network("10.0.0.0/8"), IPv4Network("172.30.0.0/16"), (), (three,))
    rules = tables(ipt.ruleset(proxy))["nat"][1][ipt.service_chain(three)]
    # the endpoints map's order is that of the `ip:port` strings
    assert [r.split('"')[1] for r in rules[1:]] == ["ns/web:p80 -> 10.180.0.10:80", "ns/web:p80 -> 10.180.0.11:80",
                                                     "ns/web:p80 -> 10.180.0.9:80"]
    assert "--probability 0.3333333333" in rules[1] and "--probability 0.5000000000" in rules[2]
    assert "statistic" not in rules[3]
    local = port("ns", "web", "172.30.0.50", three.endpoints, internal_local=True)
    proxy = NodeProxy("test-node", IPv4Network("10.0.0.0/8"), IPv4Network("172.30.0.0/16"), (), (local,))
    nat = tables(ipt.ruleset(proxy))["nat"][1]
    svl = nat[ipt.service_chain(local, "KUBE-SVL")]
    assert len(svl) == 2 and "10.180.0.10:80" in svl[1] and ipt.service_chain(local) not in nat
    assert nat["KUBE-SERVICES"][0].endswith(f"-j {ipt.service_chain(local, 'KUBE-SVL')}")
