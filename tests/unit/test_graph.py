"""`netlab graph`, pure: a Topology from a record and namespace views, drawn as dot/mermaid/JSON.

The views are what netlab.kernel.readback returns; the root tier reads real ones
(tests/integration/test_see.py). dot is checked by Graphviz itself when it is installed.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest

from netlab.kernel.readback import FdbView, LinkView, NetnsView, RouteView
from netlab.ops.record import LabRecord
from netlab.tools import drawing, topology
from tests.support.pictures import check_mermaid, dot_to_svg, svg_texts


def link(index, name, kind, *, master=None, addrs=(), peer=None, nsid=None, vxlan=None, mtu=1450):
    return LinkView(index, name, kind, "aa:bb:cc:dd:ee:%02x" % index, mtu, True, master, tuple(addrs),
                    peer, nsid, vxlan)


RECORD = LabRecord.from_json({
    "name": "pic", "backend": "vxlan", "source": "<test>",
    "networking": {"podSubnet": "172.16.0.0/16", "serviceSubnet": "172.18.0.0/20", "dnsDomain": "cluster.local"},
    "underlay": {"subnet": "10.250.0.0/16", "mtu": 1500, "netns": "pic.vpc"},
    "nodes": [{"name": "node-1", "netns": "pic.node-1", "podCIDR": "172.16.0.0/24", "underlayIP": "10.250.0.10"},
              {"name": "node-2", "netns": "pic.node-2", "podCIDR": "172.16.1.0/24", "underlayIP": "10.250.0.11"}],
    "pods": [{"name": "web", "namespace": "default", "node": "node-1", "ip": "172.16.0.2", "netns": "pic.default.web"},
             {"name": "db", "namespace": "default", "node": "node-2", "ip": "172.16.1.2", "netns": "pic.default.db"},
             {"name": "q\"x", "namespace": "team-a", "node": "node-2", "ip": "172.16.1.3", "netns": "pic.team-a.q"}],
})
# Services as the contract's `status --json` shows them (the record has none yet)
SERVICES = [{"name": "db", "namespace": "default", "type": "ClusterIP", "clusterIP": "172.18.1.5",
             "ports": [{"port": 5432, "targetPort": 5432, "protocol": "TCP"}],
             "endpoints": [{"pod": "default/db", "ip": "172.16.1.2", "ready": True}]}]

VX = {"vni": 1, "port": 8472, "local": None}


def node_view(name, own_ip, other_ip, own_cidr, other_cidr, pods, vpc_port):
    links = [link(1, "lo", "loopback"), link(2, "eth0", "veth", addrs=[f"{own_ip}/22"], peer=vpc_port, nsid=0, mtu=1500),
             link(3, "cni0", "bridge", addrs=[own_cidr.replace(".0/24", ".1/24")]),
             link(4, "flannel.1", "vxlan", addrs=[own_cidr.replace("/24", "/32")], vxlan=dict(VX, local=own_ip))]
    links += [link(10 + i, f"veth{i}{name[-1]}", "veth", master="cni0", peer=2, nsid=1 + i) for i in range(pods)]
    gw = other_cidr.split("/")[0]
    return NetnsView(f"pic.{name}", tuple(links),
                     (RouteView(other_cidr, gw, "flannel.1", True), RouteView("10.250.0.0/22", None, "eth0", False)),
                     (FdbView("flannel.1", "0e:00:00:00:00:01", other_ip),))


VIEWS = {
    "pic.vpc": NetnsView("pic.vpc", (link(1, "lo", "loopback"), link(2, "vpc0", "bridge"),
                                     link(3, "node-1", "veth", master="vpc0", peer=2, nsid=0),
                                     link(4, "node-2", "veth", master="vpc0", peer=2, nsid=1)), ()),
    "pic.node-1": node_view("node-1", "10.250.0.10", "10.250.0.11", "172.16.0.0/24", "172.16.1.0/24", 1, 3),
    "pic.node-2": node_view("node-2", "10.250.0.11", "10.250.0.10", "172.16.1.0/24", "172.16.0.0/24", 2, 4),
    "pic.default.web": NetnsView("w", (link(1, "lo", "loopback"), link(2, "eth0", "veth", addrs=["172.16.0.2/24"],
                                                                            peer=10, nsid=0)), ()),
    "pic.default.db": NetnsView("d", (link(2, "eth0", "veth", addrs=["172.16.1.2/24"], peer=10, nsid=0),), ()),
    "pic.team-a.q": NetnsView("q", (link(2, "eth0", "veth", addrs=["172.16.1.3/24"], peer=11, nsid=0),), ()),
}


def topo():
    return topology.build(RECORD, VIEWS.get, services=SERVICES)


def test_boxes_edges_and_notes_come_from_the_views():
    t = topo()
    assert [b.id for b in t.boxes] == ["vpc", "node:node-1", "node:node-2", "pod:default/web", "pod:default/db",
                                       "pod:team-a/q\"x"]
    assert [i.name for i in t.box("node:node-1").ifaces] == ["eth0", "cni0", "flannel.1"]   # host veths are links
    edges = {(e.src, e.src_if, e.dst, e.dst_if, e.kind, e.label) for e in t.edges}
    assert ("pod:default/web", "eth0", "node:node-1", "cni0", "veth", "veth01") in edges
    assert ("pod:team-a/q\"x", "eth0", "node:node-2", "cni0", "veth", "veth12") in edges
    assert ("node:node-2", "eth0", "vpc", "vpc0", "veth", "node-2") in edges
    vx = [e for e in t.edges if e.kind == "vxlan"]
    assert [(e.src, e.dst) for e in vx] == [("node:node-1", "node:node-2"), ("node:node-2", "node:node-1")]
    assert "VXLAN VNI 1 to 10.250.0.11:8472" in vx[0].label
    (svc,) = t.notes
    assert svc.kind == "Service" and svc.attach == ("pod:default/db",) and "endpoint 172.16.1.2" in svc.lines


def test_a_fallback_tunnel_the_kernel_made_is_not_drawn_but_one_in_use_is():
    """With ipip loaded (Debian's kernels), every new namespace has a tunl0, down: not the lab's."""
    node = VIEWS["pic.node-1"]
    idle = replace(link(99, "tunl0", "ipip", mtu=1480), up=False)
    views = dict(VIEWS, **{"pic.node-1": replace(node, links=node.links + (idle,))})
    assert "tunl0" not in [i.name for i in topology.build(RECORD, views.get).box("node:node-1").ifaces]
    used = link(99, "tunl0", "ipip", addrs=["172.16.0.0/32"], mtu=1480)   # the ipip backend's: up, addressed
    views["pic.node-1"] = replace(node, links=node.links + (used,))
    assert "tunl0" in [i.name for i in topology.build(RECORD, views.get).box("node:node-1").ifaces]


def test_a_gone_namespace_is_drawn_without_interfaces():
    t = topology.build(RECORD, lambda name: None if name == "pic.default.db" else VIEWS[name])
    assert t.box("pod:default/db").ifaces == []
    assert not [e for e in t.edges if e.src == "pod:default/db"]


def test_host_gw_routes_and_macvlan_children():
    views = dict(VIEWS)
    views["pic.node-1"] = NetnsView("n1", (link(2, "eth0", "veth", addrs=["10.250.0.10/22"], peer=3, nsid=0),
                                           link(5, "macvlan-shim", "macvlan", addrs=["172.16.0.1/32"], peer=2)),
                                    (RouteView("172.16.1.0/24", "10.250.0.11", "eth0", False),))
    views["pic.default.web"] = NetnsView("w", (link(2, "eth0", "macvlan", addrs=["172.16.0.2/24"], peer=2, nsid=0),), ())
    t = topology.build(replace(RECORD, backend="host-gw"), views.get)
    edges = {(e.src, e.dst, e.kind, e.label) for e in t.edges}
    assert ("node:node-1", "node:node-2", "route", "172.16.1.0/24 via 10.250.0.11 dev eth0") in edges
    assert ("pod:default/web", "node:node-1", "macvlan", "macvlan child") in edges


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz (Debian graphviz) is not installed")
def test_dot_is_accepted_by_graphviz_and_the_svg_shows_every_pod():
    dot = drawing.to_dot(topo())
    texts = " ".join(svg_texts(dot_to_svg(dot)))
    for pod in RECORD.pods:
        assert pod.name in texts and pod.ip in texts
    assert "namespace team-a" in texts and "Service default/db" in texts


def test_mermaid_is_well_formed_and_shows_every_pod():
    nodes, edges = check_mermaid(drawing.to_mermaid(topo()))
    labels = " ".join(nodes.values())
    for pod in RECORD.pods:
        assert pod.name.replace('"', "#quot;") in labels and pod.ip in labels
    assert len(edges) == len(topo().edges) + 1   # + the Service's line to its endpoint


def test_mermaid_checker_refuses_broken_text():
    with pytest.raises(AssertionError):
        check_mermaid("flowchart TB\n  subgraph g[\"x\"]\n  a[\"a\"]\n")
    with pytest.raises(AssertionError):
        check_mermaid("flowchart TB\n  a[\"a\"]\n  a ---|\"x\"| b\n")


def test_json_is_the_topology_as_data():
    data = json.loads(json.dumps(topo().to_json()))
    assert {b["id"] for b in data["boxes"]} >= {"pod:default/web", "pod:default/db"}
    assert data["notes"][0]["kind"] == "Service"
