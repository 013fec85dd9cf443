"""IPAM as kube-controller-manager's range allocator and host-local do it."""
from __future__ import annotations

from netlab.core import ipam
from netlab.spec import loader
from tests.support.labs import lab_yaml, pod_yaml


def alloc_of(text: str) -> ipam.Allocation:
    return ipam.allocate(loader.load_text(text, "f"))


def test_first_node_gets_the_first_block_and_pods_start_at_2():
    a = alloc_of(lab_yaml("x") + pod_yaml("a", "node-1") + pod_yaml("b", "node-1") + pod_yaml("c", "node-2"))
    assert [str(n.pod_cidr) for n in a.nodes.values()] == ["172.16.0.0/24", "172.16.1.0/24"]
    assert {k: str(v) for k, v in a.pod_ips.items()} == {
        "default/a": "172.16.0.2", "default/b": "172.16.0.3", "default/c": "172.16.1.2"}
    node = a.nodes["node-1"]
    assert str(node.gateway) == "172.16.0.1" and str(node.vtep_ip) == "172.16.0.0"


def test_pinned_cidrs_are_occupied_before_allocation():
    text = lab_yaml("x", nodes=3).replace("    - name: node-2", "    - name: node-2\n      podCIDR: 172.16.0.0/24")
    a = alloc_of(text)
    assert {n: str(v.pod_cidr) for n, v in a.nodes.items()} == {
        "node-1": "172.16.1.0/24", "node-2": "172.16.0.0/24", "node-3": "172.16.2.0/24"}


def test_pinned_pod_ips_are_skipped_by_the_others():
    pinned = pod_yaml("p", "node-1").replace(
        "labels:", "annotations: {cni.projectcalico.org/ipAddrs: '[\"172.16.0.3\"]'}, labels:")
    a = alloc_of(lab_yaml("x") + pod_yaml("a", "node-1") + pinned + pod_yaml("b", "node-1"))
    assert {k: str(v) for k, v in a.pod_ips.items()} == {
        "default/a": "172.16.0.2", "default/p": "172.16.0.3", "default/b": "172.16.0.4"}


def test_a_node_holds_253_pods():
    text = lab_yaml("x", nodes=1) + "".join(pod_yaml(f"p{i}", "node-1") for i in range(253))
    assert str(alloc_of(text).pod_ips["default/p252"]) == "172.16.0.254"


def test_a_slash16_holds_256_nodes_and_allocation_is_deterministic():
    text = lab_yaml("x", nodes=256).replace("172.18.0.0/20", "10.96.0.0/12")
    first, second = alloc_of(text), alloc_of(text)
    assert str(first.nodes["node-256"].pod_cidr) == "172.16.255.0/24"
    assert first == second


def test_underlay_addresses_per_rack():
    text = lab_yaml("x", nodes=3).replace("    - name: node-2", "    - name: node-2\n      rack: r2")
    a = alloc_of(text)
    assert [(n.rack.name, str(n.underlay_ip)) for n in a.nodes.values()] == [
        ("default", "10.250.0.10"), ("r2", "10.250.4.10"), ("default", "10.250.0.11")]
