"""`netlab trace`, pure: the walk over namespace views, the policy step, and frame decoding.

The root tier (tests/integration/test_see.py) checks the same against real labs and the wire.
"""
from __future__ import annotations

import struct
from ipaddress import IPv4Address

from netlab.kernel.readback import FdbView, LinkView, NeighView, NetnsView, RouteGet
from netlab.tools.trace import Dnat, Flow, Lab, Probe, apply_policy, layers, matches, parse_kube_proxy, predict


def link(index, name, kind, mac, *, master=None, addrs=(), peer=None, nsid=None):
    return LinkView(index, name, kind, mac, 1450, True, master, tuple(addrs), peer, nsid)


def same_node_lab() -> Lab:
    views = {
        "p1": NetnsView("p1", (link(2, "eth0", "veth", "02:00:00:00:00:01", addrs=["172.16.0.2/24"], peer=5, nsid=0),), ()),
        "p2": NetnsView("p2", (link(2, "eth0", "veth", "02:00:00:00:00:02", addrs=["172.16.0.3/24"], peer=6, nsid=0),), ()),
        "n1": NetnsView("n1", (link(3, "cni0", "bridge", "02:00:00:00:00:0b", addrs=["172.16.0.1/24"]),
                               link(5, "vethA", "veth", "02:00:00:00:00:aa", master="cni0", peer=2, nsid=1),
                               link(6, "vethB", "veth", "02:00:00:00:00:bb", master="cni0", peer=2, nsid=2)),
                        (), (FdbView("vethB", "02:00:00:00:00:02", None),),
                        ()),
    }
    routes = {("p1", "172.16.0.3", None): RouteGet(False, "eth0", None, "172.16.0.2"),
              ("p2", "172.16.0.3", "eth0"): RouteGet(True, None, None, None)}

    def route_get(ns, dst, src, iif):
        return routes[(ns, dst, iif)]
    return Lab(views, route_get, {"n1": "node-1"}, {"p1": {"n1"}, "p2": {"n1"}, "n1": {"p1", "p2"}})


FLOW = Flow("172.16.0.2", "172.16.0.3", "TCP", 80)


def test_same_node_walk_reads_the_bridge_fdb():
    hops, verdict = predict(same_node_lab(), FLOW, "p1")
    assert [(h.netns, h.in_, h.out, h.action) for h in hops] == [
        ("p1", None, "eth0", "route"), ("n1", "vethA", "vethB", "bridge"), ("p2", "eth0", None, "deliver")]
    assert hops[1].detail == "cni0 fdb 02:00:00:00:00:02 dev vethB" and verdict == "delivered"


def test_an_unlearned_address_goes_to_the_port_toward_its_owner():
    lab = same_node_lab()
    lab.views["n1"] = NetnsView("n1", lab.views["n1"].links, ())
    lab.views["p1"] = NetnsView("p1", lab.views["p1"].links, (), (), (NeighView("eth0", "172.16.0.3", None),))
    hops, _ = predict(lab, FLOW, "p1")
    assert hops[1].out == "vethB" and "not learned yet, flooded" in hops[1].detail


def test_a_policy_denial_ends_the_path_at_the_forwarding_hop():
    lab = same_node_lab()
    hops, verdict = predict(lab, FLOW, "p1")
    asked = []

    def policy(node, side):
        asked.append((node, side))
        return (side == "egress", f"{side} says so")
    hops, verdict = apply_policy(lab, hops, verdict, policy)
    assert verdict == "dropped" and [h.action for h in hops] == ["route", "drop"]
    assert hops[1].detail == "NetworkPolicy ingress: ingress says so" and asked == [("node-1", "egress"),
                                                                                  ("node-1", "ingress")]


def ipv4(src, dst, proto, payload):
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, proto, 0,
                         IPv4Address(src).packed, IPv4Address(dst).packed)
    return header + payload


def ether(payload):
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + payload


def test_layers_look_inside_vxlan_and_match_the_probe():
    probe = Probe(ident=0x4242, sport=45000)
    inner = ether(ipv4("172.16.0.2", "172.16.1.2", 6, struct.pack("!HH", 45000, 80) + b"\0" * 16))
    vxlan = struct.pack("!HHHH", 50000, 8472, 8 + 8 + len(inner), 0) + b"\x08\0\0\0\0\0\x01\0" + inner
    frame = ether(ipv4("10.250.0.10", "10.250.0.11", 17, vxlan))
    found = layers(frame, 8472)
    assert found == [("10.250.0.10", "10.250.0.11", 17, 50000, 8472, None),
                     ("172.16.0.2", "172.16.1.2", 6, 45000, 80, None)]
    flow = Flow("172.16.0.2", "172.16.1.2", "TCP", 80)
    assert matches(found, flow, probe, Flow("10.250.0.10", "10.250.0.11", "UDP", 8472))
    assert not matches(found, flow, probe, None)                     # the hop expects it bare
    assert not matches(found, flow, Probe(0x4242, 45001), Flow("10.250.0.10", "10.250.0.11", "UDP", 8472))
    icmp = layers(ether(ipv4("172.16.0.2", "172.16.1.2", 1, struct.pack("!BBHHH", 8, 0, 0, 0x4242, 1))), None)
    assert matches(icmp, Flow("172.16.0.2", "172.16.1.2", "ICMP", None), probe, None)


# `nft list table ip kube-proxy` on a node of topologies/services.yaml (an excerpt, as nft prints it)
KUBE_PROXY_LIST = """table ip kube-proxy {
\tcomment "rules for kube-proxy"
\tmap no-endpoint-services {
\t\ttype ipv4_addr . inet_proto . inet_service : verdict
\t\telements = { 172.18.0.50 . tcp . 80 comment "default/empty:http" : goto reject-chain }
\t}

\tmap service-ips {
\t\ttype ipv4_addr . inet_proto . inet_service : verdict
\t\tcomment "ClusterIP, ExternalIP and LoadBalancer IP traffic"
\t\telements = { 172.18.0.10 . tcp . 80 : goto service-SUSTUHLJ-default/web/tcp/http,
\t\t\t     172.18.0.10 . udp . 53 : goto service-S5KDWTE3-default/web/udp/dns }
\t}

\tchain service-SUSTUHLJ-default/web/tcp/http {
\t\tip daddr 172.18.0.10 ip saddr != 172.16.0.0/16 jump mark-for-masquerade
\t\tnumgen random mod 2 vmap { 0 : goto endpoint-QHYTZM54-default/web/tcp/http__172.16.0.3/8080, 1 : goto endpoint-VFDY7PK3-default/web/tcp/http__172.16.1.5/8080 }
\t}

\tchain endpoint-QHYTZM54-default/web/tcp/http__172.16.0.3/8080 {
\t\tip saddr 172.16.0.3 jump mark-for-masquerade
\t\tmeta l4proto tcp dnat to 172.16.0.3:8080
\t}

\tchain endpoint-VFDY7PK3-default/web/tcp/http__172.16.1.5/8080 {
\t\tip saddr 172.16.1.5 jump mark-for-masquerade
\t\tmeta l4proto tcp dnat to 172.16.1.5:8080
\t}

\tchain service-S5KDWTE3-default/web/udp/dns {
\t\tnumgen random mod 1 vmap { 0 : goto endpoint-M2VDXPQ6-default/web/udp/dns__172.16.0.3/5353 }
\t}

\tchain endpoint-M2VDXPQ6-default/web/udp/dns__172.16.0.3/5353 {
\t\tmeta l4proto udp dnat to 172.16.0.3:5353
\t}
}
"""


def test_kube_proxy_table_is_read_as_services_to_endpoints():
    table = parse_kube_proxy(KUBE_PROXY_LIST)
    assert set(table) == {("172.18.0.10", "tcp", 80), ("172.18.0.10", "udp", 53), ("172.18.0.50", "tcp", 80)}
    assert table[("172.18.0.50", "tcp", 80)] == Dnat("no-endpoint-services", (), "goto reject-chain")
    web = table[("172.18.0.10", "tcp", 80)]
    assert web.chain == "service-SUSTUHLJ-default/web/tcp/http"
    assert web.endpoints == (("172.16.0.3", 8080, "endpoint-QHYTZM54-default/web/tcp/http__172.16.0.3/8080"),
                             ("172.16.1.5", 8080, "endpoint-VFDY7PK3-default/web/tcp/http__172.16.1.5/8080"))
    assert [e[:2] for e in table[("172.18.0.10", "udp", 53)].endpoints] == [("172.16.0.3", 5353)]


def service_lab() -> Lab:
    lab = same_node_lab()
    extra = {("p1", "172.18.0.10", None): RouteGet(False, "eth0", "172.16.0.1", "172.16.0.2"),
             ("p1", "172.18.0.50", None): RouteGet(False, "eth0", "172.16.0.1", "172.16.0.2"),
             ("n1", "172.16.0.3", "cni0"): RouteGet(False, "cni0", None, None),
             ("n1", "172.18.0.10", "cni0"): RouteGet(False, None, None, None)}
    inner = lab.route_get

    def route_get(ns, dst, src, iif):
        return extra.get((ns, dst, iif)) or inner(ns, dst, src, iif)
    lab.route_get = route_get
    lab.services = {"n1": parse_kube_proxy(KUBE_PROXY_LIST)}
    return lab


SVC_FLOW = Flow("172.16.0.2", "172.18.0.10", "TCP", 80)


def test_a_service_is_dnatted_where_the_node_takes_the_packet_then_routed_translated():
    hops, verdict = predict(service_lab(), SVC_FLOW, "p1", "172.16.0.3")
    assert [(h.netns, h.in_, h.out, h.action) for h in hops] == [
        ("p1", None, "eth0", "route"), ("n1", "vethA", "cni0", "bridge"), ("n1", "cni0", None, "dnat"),
        ("n1", "cni0", "cni0", "route"), ("n1", "cni0", "vethB", "bridge"), ("p2", "eth0", None, "deliver")]
    assert verdict == "delivered"
    dnat = hops[2]
    assert "endpoint-QHYTZM54-default/web/tcp/http__172.16.0.3/8080: dnat to 172.16.0.3:8080" in dnat.detail
    assert "numgen random mod 2 of {172.16.0.3:8080, 172.16.1.5:8080}" in dnat.detail
    translated = Flow("172.16.0.2", "172.16.0.3", "TCP", 8080)
    # before the DNAT the hops carry the Service's address; after it, the endpoint's
    assert [h.header(SVC_FLOW) for h in hops] == [SVC_FLOW] * 3 + [translated] * 3
    assert hops[3].watch == "cni0"


def test_an_endpoint_the_rules_do_not_name_is_a_drop_at_the_dnat():
    hops, verdict = predict(service_lab(), SVC_FLOW, "p1", "172.16.9.9")
    assert hops[-1].action == "drop" and "172.16.9.9 is not an endpoint of service-SUSTUHLJ" in hops[-1].detail
    assert verdict == "dropped"


def test_a_service_with_no_endpoints_is_rejected_where_the_node_takes_it():
    hops, verdict = predict(service_lab(), Flow("172.16.0.2", "172.18.0.50", "TCP", 80), "p1", None)
    assert [(h.netns, h.action) for h in hops][-1] == ("n1", "drop") and verdict == "dropped"
    assert hops[-1].detail == ("kube-proxy: no endpoints: 172.18.0.50 . tcp . 80 in @no-endpoint-services -> "
                               "reject-chain: rejected (ICMP port unreachable: connection refused)")


def test_a_service_port_kube_proxy_does_not_serve_is_routed_as_it_is():
    hops, _ = predict(service_lab(), Flow("172.16.0.2", "172.18.0.10", "TCP", 81), "p1", "172.16.0.3")
    assert [h.action for h in hops] == ["route", "bridge", "drop"] and hops[-1].detail == "no route to 172.18.0.10"


def test_wireguard_peer_is_the_longest_allowed_ips_match():
    from netlab.tools.trace import WgView
    view = WgView("flannel-wg", 51820, (("keyA", "10.250.0.11", 51820, ("172.16.0.0/16",)),
                                        ("keyB", "10.250.0.12", 51820, ("172.16.2.0/24", "10.0.0.1/32"))))
    assert view.peer_for("172.16.2.9")[0] == "keyB" and view.peer_for("172.16.1.9")[0] == "keyA"
    assert view.peer_for("192.168.0.1") is None


def test_a_sealed_hop_matches_its_outer_header_only():
    outer = Flow("10.250.0.10", "10.250.0.11", "UDP", 51820)
    wg_packet = [("10.250.0.10", "10.250.0.11", 17, 51820, 51820, None)]   # encrypted: no inner layer
    probe = Probe(0x1234, 50000)
    assert matches(wg_packet, FLOW, probe, outer, sealed=True)
    assert not matches(wg_packet, FLOW, probe, outer)   # unsealed, the inner packet must be there
    back = [("10.250.0.11", "10.250.0.10", 17, 51820, 51820, None)]
    assert not matches(back, FLOW, probe, outer, sealed=True)


def test_wireguard_walk_encapsulates_to_the_peer_and_decapsulates_at_its_port():
    from netlab.tools.trace import WgView
    a, b = "02:00:00:00:01:0a", "02:00:00:00:01:0b"
    views = {
        "n1": NetnsView("n1", (link(2, "eth0", "veth", a, addrs=["10.250.0.10/22"], peer=5, nsid=0),
                               link(3, "flannel-wg", "tun", None, addrs=["172.16.0.0/32"])), (), (), ()),
        "vpc": NetnsView("vpc", (link(1, "vpc0", "bridge", "02:00:00:00:01:01"),
                                 link(5, "node-1", "veth", "02:00:00:00:01:05", master="vpc0", peer=2, nsid=1),
                                 link(6, "node-2", "veth", "02:00:00:00:01:06", master="vpc0", peer=2, nsid=2)),
                         (), (FdbView("node-2", b, None),), ()),
        "n2": NetnsView("n2", (link(2, "eth0", "veth", b, addrs=["10.250.0.11/22"], peer=6, nsid=0),
                               link(3, "flannel-wg", "tun", None, addrs=["172.16.1.0/32"]),
                               link(4, "cni0", "bridge", "02:00:00:00:01:0c", addrs=["172.16.1.1/24"])), (), (), ()),
    }
    routes = {("n1", "172.16.1.1", None): RouteGet(False, "flannel-wg", None, "172.16.0.0"),
              ("n1", "10.250.0.11", None): RouteGet(False, "eth0", None, "10.250.0.10"),
              ("n2", "10.250.0.11", "eth0"): RouteGet(True, None, None, None),
              ("n2", "172.16.1.1", "flannel-wg"): RouteGet(True, None, None, None)}
    lab = Lab(views, lambda ns, dst, src, iif: routes[(ns, dst, iif)], {"n1": "node-1", "n2": "node-2"},
              {"n1": {"vpc"}, "n2": {"vpc"}, "vpc": {"n1", "n2"}},
              wireguard={"n1": WgView("flannel-wg", 51820, (("keyB", "10.250.0.11", 51820, ("172.16.1.0/24",)),)),
                         "n2": WgView("flannel-wg", 51820, (("keyA", "10.250.0.10", 51820, ("172.16.0.0/24",)),))})
    hops, verdict = predict(lab, Flow("172.16.0.0", "172.16.1.1", "ICMP", None), "n1")
    assert [(h.netns, h.in_, h.out, h.action) for h in hops] == [
        ("n1", None, "flannel-wg", "route"), ("n1", "flannel-wg", "eth0", "encap"),
        ("vpc", "node-1", "node-2", "bridge"), ("n2", "eth0", "flannel-wg", "decap"),
        ("n2", "flannel-wg", None, "deliver")]
    assert verdict == "delivered"
    assert "endpoint 10.250.0.11:51820: 10.250.0.10 > 10.250.0.11 udp/51820" in hops[1].detail
    # between the peers only the outer header is readable; before and after, the packet itself
    assert [h.sealed for h in hops] == [False, True, True, True, False]
