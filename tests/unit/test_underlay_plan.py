"""Underlay backends and racks, pure: plans of macvlan, ipvlan, IPIP, directRouting; rack refusals."""
from __future__ import annotations

from ipaddress import IPv4Interface, IPv4Network

import pytest

from netlab.core import backends, ipam, plan
from netlab.spec import loader
from netlab.errors import InputError
from netlab.core.backends import Backend
from netlab.core.backends.ipvlan import IpvlanMode
from netlab.core.steps import Addr, Bridge, Fdb, Ipip, Ipvlan, Macvlan, Neigh, Route, Sysctl, Veth
from tests.support.labs import lab_yaml, pod_yaml

RACKS = "  nodes:\n    - name: node-1\n      rack: r1\n    - name: node-2\n      rack: r1\n    - name: node-3\n      rack: r2\n"


def racked(backend: str, extra_spec: str = "") -> str:
    return lab_yaml("x", backend=backend, extra_spec=extra_spec, nodes=0).replace("  nodes:\n\n", RACKS)


def plan_of(text: str) -> plan.Plan:
    lab = loader.load_text(text, "f")
    return plan.build(lab, ipam.allocate(lab))


def problems(text: str) -> list[str]:
    with pytest.raises(InputError) as err:
        loader.load_text(text, "lab.yaml")
    return [str(p) for p in err.value.problems]


def steps_of(p: plan.Plan, role: plan.Role, subject: str, kind: type) -> list:
    return [s for s in p.find(role, subject).steps if isinstance(s, kind)]


def test_macvlan_pod_is_a_child_of_its_nodes_uplink_with_podsubnet_on_link():
    p = plan_of(lab_yaml("x", backend="macvlan") + pod_yaml("a", "node-2"))
    (link,) = steps_of(p, plan.Role.POD, "default/a", Macvlan)
    assert (link.name, link.parent, link.mode, link.mtu) == ("eth0", "eth0", "bridge", 1500)
    assert (link.parent_netns, link.netns) == ("x.node-2", "x.default.a")
    # made under a temporary name and renamed in the pod: before 6.3 the kernel checks the new
    # name in the parent's namespace, where the uplink is already called eth0
    assert link.describe() == ("ip -n x.node-2 link add netlab-new link eth0 mtu 1500 netns x.default.a "
                               "type macvlan mode bridge; ip -n x.default.a link set netlab-new name eth0")
    routes = [(str(r.dst), r.via and str(r.via), r.dev) for r in steps_of(p, plan.Role.POD, "default/a", Route)]
    assert routes == [("172.16.0.0/16", None, "eth0"), ("0.0.0.0/0", "172.16.1.1", "eth0")]
    assert steps_of(p, plan.Role.POD, "default/a", Veth) == [] and p.mtu == 1500


def test_macvlan_node_has_no_cni0_and_a_shim_with_its_gateway():
    p = plan_of(lab_yaml("x", backend="macvlan") + pod_yaml("a", "node-1"))
    node = p.find(plan.Role.NODE, "node-1")
    assert steps_of(p, plan.Role.NODE, "node-1", Bridge) == []
    assert "net/bridge/bridge-nf-call-iptables" not in [s.key for s in steps_of(p, plan.Role.NODE, "node-1", Sysctl)]
    (shim,) = steps_of(p, plan.Role.NODE, "node-1", Macvlan)
    assert (shim.name, shim.parent, shim.parent_netns) == ("macvlan-shim", "eth0", None)
    assert Addr("macvlan-shim", IPv4Interface("172.16.0.1/32")) in node.steps
    assert Route(IPv4Network("172.16.0.0/16"), "macvlan-shim") in node.steps


def test_ipvlan_l2_and_l3_plans():
    l2 = plan_of(lab_yaml("x", backend="ipvlan") + pod_yaml("a", "node-1"))
    (link,) = steps_of(l2, plan.Role.POD, "default/a", Ipvlan)
    assert (link.mode, link.parent_netns) == ("l2", "x.node-1")
    assert [str(r.dst) for r in steps_of(l2, plan.Role.POD, "default/a", Route)] == ["172.16.0.0/16", "0.0.0.0/0"]
    l3 = plan_of(lab_yaml("x", backend="ipvlan", extra_spec="  ipvlan: {mode: l3}\n") + pod_yaml("a", "node-1"))
    assert l3.lab.lab.options.mode is IpvlanMode.L3
    (link,) = steps_of(l3, plan.Role.POD, "default/a", Ipvlan)
    assert link.describe() == ("ip -n x.node-1 link add netlab-new link eth0 mtu 1500 netns x.default.a "
                               "type ipvlan mode l3; ip -n x.default.a link set netlab-new name eth0")
    pod_routes = [(str(r.dst), r.via) for r in steps_of(l3, plan.Role.POD, "default/a", Route)]
    assert pod_routes == [("0.0.0.0/0", None)]      # the node's stack routes everything
    node_routes = [(str(r.dst), r.via and str(r.via), r.dev) for r in steps_of(l3, plan.Role.NODE, "node-1", Route)]
    assert node_routes == [("172.16.0.0/24", None, "ipvlan-shim"), ("172.16.1.0/24", "10.250.0.11", "eth0")]


def test_ipip_is_calicos_tunl0_with_onlink_routes_via_node_ips():
    p = plan_of(racked("ipip"))
    (tunl,) = steps_of(p, plan.Role.NODE, "node-1", Ipip)
    assert (tunl.name, tunl.mtu, p.mtu) == ("tunl0", 1480, 1480)
    routes = [(str(r.dst), str(r.via), r.onlink) for r in steps_of(p, plan.Role.NODE, "node-1", Route)
              if r.dev == "tunl0"]
    assert routes == [("172.16.1.0/24", "10.250.0.11", True), ("172.16.2.0/24", "10.250.4.10", True)]
    assert [b.mtu for b in steps_of(p, plan.Role.NODE, "node-1", Bridge)] == [1480]


def test_direct_routing_is_host_gw_inside_a_rack_and_vxlan_across():
    p = plan_of(racked("vxlan", "  vxlan: {directRouting: true}\n"))
    routes = {str(r.dst): (str(r.via), r.dev) for r in steps_of(p, plan.Role.NODE, "node-1", Route)}
    assert routes["172.16.1.0/24"] == ("10.250.0.11", "eth0")
    assert routes["172.16.2.0/24"] == ("172.16.2.0", "flannel.1")
    assert routes["10.250.0.0/16"] == ("10.250.0.1", "eth0")        # to the other rack via the VPC router
    assert [str(n.ip) for n in steps_of(p, plan.Role.NODE, "node-1", Neigh)] == ["172.16.2.0"]
    assert [str(f.dst) for f in steps_of(p, plan.Role.NODE, "node-1", Fdb)] == ["10.250.4.10"]


@pytest.mark.parametrize("backend,need,hint", [
    ("host-gw", "host-gw needs L2 adjacency", "use backend vxlan, or vxlan with directRouting: true"),
    ("macvlan", "macvlan needs one L2 segment for all pods", "use backend vxlan"),
    ("ipvlan", "ipvlan needs one L2 segment for all nodes", "use backend vxlan"),
])
def test_backends_needing_one_segment_are_refused_across_racks(backend, need, hint):
    (problem,) = problems(racked(backend))
    assert problem.startswith("lab.yaml:")
    assert f"spec.nodes[2].rack: {need}: nodes node-1 and node-3 are in different racks (r1, r2)" in problem
    assert hint in problem


@pytest.mark.parametrize("backend", ["vxlan", "ipip"])
def test_tunnels_cross_racks(backend):
    assert plan_of(racked(backend)).alloc.racks[1].name == "r2"


def test_a_node_without_rack_is_in_the_default_rack():
    text = lab_yaml("x", backend="host-gw").replace("    - name: node-2\n", "    - name: node-2\n      rack: r2\n")
    (problem,) = problems(text)
    assert "nodes node-1 and node-2 are in different racks (default, r2)" in problem


def test_ipvlan_options_are_checked():
    bad_mode = problems(lab_yaml("x", backend="ipvlan", extra_spec="  ipvlan: {mode: l3s}\n"))
    assert any("spec.ipvlan.mode: unknown ipvlan mode 'l3s' (use one of: l2, l3)" in p for p in bad_mode)
    wrong_backend = problems(lab_yaml("x", extra_spec="  ipvlan: {mode: l2}\n"))
    assert any("ipvlan options given for backend 'vxlan'" in p for p in wrong_backend)


def test_required_link_kinds_and_their_kernel_names():
    kinds = {b: backends.required_link_kinds(loader.load_text(lab_yaml("x", backend=b.value), "f"))
             for b in Backend}
    assert kinds[Backend.IPIP] == ("veth", "bridge", "ipip")
    assert kinds[Backend.IPVLAN] == ("veth", "bridge", "ipvlan")
    assert kinds[Backend.MACVLAN] == ("veth", "bridge", "macvlan")
    assert kinds[Backend.HOST_GW] == ("veth", "bridge")
    assert backends.kernel_option("ipip") == "ipip (CONFIG_NET_IPIP, module ipip)"
