"""Loading and validation: good files load with kubeadm's defaults; bad ones name every problem."""
from __future__ import annotations

from ipaddress import IPv4Network
from pathlib import Path

import pytest

from netlab.spec import loader
from netlab.errors import InputError
from netlab.core.backends import Backend
from netlab.model.lab import NAMESPACE_NAME_LABEL
from tests.support.labs import lab_yaml, pod_yaml

TOPOLOGIES = sorted((Path(__file__).parents[2] / "topologies").glob("*.yaml"))


def problems(text: str) -> list[str]:
    with pytest.raises(InputError) as err:
        loader.load_text(text, "lab.yaml")
    return [str(p) for p in err.value.problems]


def test_default_lab_is_the_seed_config():
    lab = loader.load_file(None)
    assert lab.networking.pod_subnet == IPv4Network("172.16.0.0/16")
    assert lab.networking.service_subnet == IPv4Network("172.18.0.0/20")
    assert lab.networking.dns_domain == "cluster.local"
    assert lab.lab.backend is Backend.VXLAN
    assert [n.name for n in lab.lab.nodes] == ["node-1", "node-2"]
    assert sorted(p.node for p in lab.pods if p.namespace == "default") == ["node-1", "node-1", "node-2", "node-2"]
    assert lab.lab.dns_enabled   # and kubeadm's cluster DNS, one replica per node, after the file's pods
    assert [(p.namespace, p.node, p.name[:8]) for p in lab.pods[4:]] == [("kube-system", "node-1", "coredns-"),
                                                                        ("kube-system", "node-2", "coredns-")]


@pytest.mark.parametrize("path", TOPOLOGIES, ids=lambda p: p.name)
def test_shipped_topologies_load(path):
    lab = loader.load_file(str(path))
    assert lab.lab.nodes


def test_kubeadm_defaults_when_fields_are_absent():
    text = lab_yaml("x").replace('  serviceSubnet: "172.18.0.0/20"\n', "")
    lab = loader.load_text(text, "f")
    assert lab.networking.service_subnet == IPv4Network("10.96.0.0/12")
    assert lab.networking.dns_domain == "cluster.local"


def test_v1beta3_is_accepted():
    lab = loader.load_text(lab_yaml("x").replace("v1beta4", "v1beta3"), "f")
    assert lab.lab.name == "x"


def test_namespaces_get_the_metadata_name_label():
    text = lab_yaml("x") + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: team, labels: {a: b}}\n" \
        + pod_yaml("p", "node-1", namespace="other")
    lab = loader.load_text(text, "f")
    assert dict(lab.namespace("team").labels) == {"a": "b", NAMESPACE_NAME_LABEL: "team"}
    assert dict(lab.namespace("other").labels) == {NAMESPACE_NAME_LABEL: "other"}


def test_pods_without_node_are_spread_round_robin():
    text = lab_yaml("x") + "".join(pod_yaml(f"p{i}", "node-1").replace("  nodeName: node-1\n", "")
                                   for i in range(3))
    assert [p.node for p in loader.load_text(text, "f").pods] == ["node-1", "node-2", "node-1"]


def test_compact_form_generates_nodes_and_pods():
    text = lab_yaml("x").split("  nodes:")[0] + "  scale: {nodes: 3, podsPerNode: 4}\n"
    lab = loader.load_text(text, "f")
    assert [n.name for n in lab.lab.nodes] == ["node-1", "node-2", "node-3"]
    assert len(lab.pods) == 12 and lab.pods[5].name == "node-2-p2" and lab.pods[5].node == "node-2"


def test_calico_annotation_pins_the_pod_ip():
    text = lab_yaml("x") + pod_yaml("p", "node-1").replace(
        "labels:", "annotations: {cni.projectcalico.org/ipAddrs: '[\"172.16.0.10\"]'}, labels:")
    assert str(loader.load_text(text, "f").pods[0].pinned_ip) == "172.16.0.10"


# The single bad-input cases are file pairs in tests/golden/errors (test_error_goldens.py).


def test_every_problem_is_reported_in_one_run():
    text = lab_yaml("x", backend="banana").replace("- name: node-2", "- name: node-1") \
        + pod_yaml("p", "node-9") + pod_yaml("Q", "node-1")
    found = problems(text)
    assert len(found) == 4, found


def test_service_subnet_blocks_are_never_handed_out():
    text = lab_yaml("x", nodes=2, pod_subnet="172.16.0.0/16").replace("172.18.0.0/20", "172.16.0.0/23")
    from netlab.core.ipam import allocate
    alloc = allocate(loader.load_text(text, "f"))
    assert [str(n.pod_cidr) for n in alloc.nodes.values()] == ["172.16.2.0/24", "172.16.3.0/24"]


def test_host_veth_names_that_collide_on_a_node_are_refused(monkeypatch):
    from netlab.core import plan
    monkeypatch.setattr(plan, "pod_host_veth", lambda lab, pod: "veth00000000")   # force the rare clash
    found = problems(lab_yaml("x") + pod_yaml("a", "node-1") + pod_yaml("b", "node-1") + pod_yaml("c", "node-2"))
    assert found == ["lab.yaml:27: Pod(default/b).metadata.name: pods default/a and default/b on node 'node-1' "
                     "hash to the same interface name veth00000000 (rename one of them)"]
