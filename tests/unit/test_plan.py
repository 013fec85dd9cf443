"""The plan, pure: golden files (lab file -> every object per namespace) and flannel's shapes.

Regenerate the golden files after an intended change with NETLAB_UPDATE_GOLDEN=1.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from netlab.core import ipam, plan
from netlab.spec import loader
from netlab.core.steps import Fdb, Neigh, Route, Veth, Vxlan
from tests.support.labs import lab_yaml, pod_yaml

ROOT = Path(__file__).parents[2]
GOLDEN = ROOT / "tests" / "golden" / "plans"
INPUTS = sorted((ROOT / "topologies").glob("*.yaml"))


def plan_of(text: str) -> plan.Plan:
    lab = loader.load_text(text, "f")
    return plan.build(lab, ipam.allocate(lab))


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.stem)
def test_golden_plan(path):
    lab = loader.load_file(str(path))
    text = plan.render(plan.build(lab, ipam.allocate(lab)))
    golden = GOLDEN / f"{path.stem}.plan"
    if os.environ.get("NETLAB_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()


def test_vxlan_entries_in_flannels_order():
    p = plan_of(lab_yaml("x", nodes=3))
    node1 = p.find(plan.Role.NODE, "node-1")
    vx = [s for s in node1.steps if isinstance(s, Vxlan)][0]
    assert (vx.name, vx.vni, vx.port, vx.mtu, str(vx.local)) == ("flannel.1", 1, 8472, 1450, "10.250.0.10")
    peers = [s for s in node1.steps if isinstance(s, (Neigh, Fdb, Route)) and s.dev == "flannel.1"]
    kinds = [type(s).__name__ for s in peers]
    assert kinds == ["Neigh", "Fdb", "Route"] * 2
    neigh, fdb, route = peers[:3]
    assert str(neigh.ip) == "172.16.1.0" and fdb.mac == neigh.mac and str(fdb.dst) == "10.250.0.11"
    assert (str(route.dst), str(route.via), route.onlink) == ("172.16.1.0/24", "172.16.1.0", True)


def test_host_gw_routes_via_the_remote_underlay_ip_and_full_mtu():
    p = plan_of(lab_yaml("x", backend="host-gw") + pod_yaml("a", "node-1"))
    routes = [s for s in p.find(plan.Role.NODE, "node-1").steps if isinstance(s, Route)]
    assert [(str(r.dst), str(r.via), r.dev) for r in routes] == [("172.16.1.0/24", "10.250.0.11", "eth0")]
    veth = [s for s in p.find(plan.Role.POD, "default/a").steps if isinstance(s, Veth)][0]
    assert veth.mtu == 1500 and p.mtu == 1500


def test_pod_veth_is_named_like_the_bridge_plugin_and_hairpinned():
    p = plan_of(lab_yaml("x") + pod_yaml("a", "node-1"))
    veth = [s for s in p.find(plan.Role.POD, "default/a").steps if isinstance(s, Veth)][0]
    assert veth.name == "eth0" and veth.peer.startswith("veth") and len(veth.peer) == 12
    assert veth.peer_master == "cni0" and veth.hairpin and veth.mtu == 1450


def test_fingerprints_change_only_where_the_lab_changed():
    a = plan_of(lab_yaml("x") + pod_yaml("a", "node-1") + pod_yaml("b", "node-2"))
    b = plan_of(lab_yaml("x") + pod_yaml("a", "node-1") + pod_yaml("b", "node-2", ports="[{containerPort: 81}]"))
    fa = {ns.name: ns.fingerprint for ns in a.namespaces}
    fb = {ns.name: ns.fingerprint for ns in b.namespaces}
    assert [n for n in fa if fa[n] != fb[n]] == ["x.default.b"]
