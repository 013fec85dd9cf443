"""Services and Deployments, pure: ClusterIP/NodePort allocation, ReplicaSet naming, EndpointSlices."""
from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from netlab.core import clusterip, endpoints, ipam, kubeproxy
from netlab.core.clusterip import ServiceAllocationError
from netlab.model.lab import Protocol
from netlab.model.service import Service, ServicePort, ServiceType
from netlab.spec import loader, services as workloads
from netlab.spec.labtext import lab_yaml

TOPOLOGY = Path(__file__).parents[2] / "topologies" / "services.yaml"
SUBNET = IPv4Network("172.18.0.0/20")


def svc(name: str, ns: str = "default", **kw) -> Service:
    return Service(name, ns, ports=(ServicePort(80),), **kw)


@pytest.mark.parametrize("size, offset", [(8, 0), (16, 16), (256, 16), (4096, 256), (1 << 16, 256), (1024, 64)])
def test_band_offset_is_kep_3070s(size, offset):
    assert clusterip.band_offset(size) == offset


def test_kubernetes_gets_the_first_address_and_dynamic_ones_the_upper_band():
    services = (svc("kubernetes"),) + tuple(svc(f"s{i}") for i in range(200))
    got = clusterip.allocate(services, SUBNET).cluster_ips
    assert got["default/kubernetes"] == IPv4Address("172.18.0.1")
    upper_start = IPv4Address("172.18.1.1")   # base .0.1 + offset 256
    assert all(upper_start <= ip <= IPv4Address("172.18.15.254") for k, ip in got.items() if k != "default/kubernetes")
    assert len(set(got.values())) == len(got)
    assert IPv4Address("172.18.0.10") not in got.values()


def test_allocation_is_deterministic_and_independent_of_other_services():
    one = clusterip.allocate((svc("a"), svc("b")), SUBNET).cluster_ips
    two = clusterip.allocate((svc("b"), svc("a")), SUBNET).cluster_ips
    assert one == two


def test_pinned_addresses_anywhere_in_range_and_lower_band_after_upper_is_full():
    small = IPv4Network("172.18.0.0/27")   # 30 usable, offset 16: upper band .17-.30
    services = (svc("pinned", cluster_ip=IPv4Address("172.18.0.5")),) + tuple(svc(f"s{i}") for i in range(20))
    got = clusterip.allocate(services, small).cluster_ips
    assert got["default/pinned"] == IPv4Address("172.18.0.5")
    indexes = sorted(int(ip) - int(small.network_address) for k, ip in got.items() if k != "default/pinned")
    assert indexes[-14:] == list(range(17, 31))       # the upper band filled first
    assert 10 not in indexes and 5 not in indexes      # DNS reserved, the pin respected


def test_conflict_outside_and_exhaustion_are_errors():
    with pytest.raises(ServiceAllocationError, match="already allocated"):
        clusterip.allocate((svc("a", cluster_ip=IPv4Address("172.18.0.7")),
                            svc("b", cluster_ip=IPv4Address("172.18.0.7"))), SUBNET)
    with pytest.raises(ServiceAllocationError, match="not in serviceSubnet"):
        clusterip.allocate((svc("a", cluster_ip=IPv4Address("10.0.0.7")),), SUBNET)
    with pytest.raises(ServiceAllocationError, match="no address left"):
        clusterip.allocate(tuple(svc(f"s{i}") for i in range(7)), IPv4Network("172.18.0.0/29"))


def test_node_ports_pinned_and_dynamic_in_range():
    a = Service("a", "default", ServiceType.NODE_PORT, ports=(ServicePort(80, node_port=30080), ServicePort(81, name="x")))
    got = clusterip.allocate((a,), SUBNET).node_ports
    assert got[("default/a", 0)] == 30080 and 30000 + 86 <= got[("default/a", 1)] <= 32767


def test_replicaset_hash_and_names_use_kubernetes_alphabet():
    assert workloads.safe_encode("0123456789") == "".join(workloads.ALPHANUMS[ord(c) % 27] for c in "0123456789")
    assert workloads.fnv32a(b"") == 0x811C9DC5 and workloads.fnv32a(b"a") == 0xE40C292C   # FNV-1a test vectors
    lab = loader.load_file(str(TOPOLOGY))
    web = [p for p in lab.pods if p.name.startswith("web-")]
    assert len(web) == 3
    for pod in web:
        _, template_hash, suffix = pod.name.split("-")
        assert len(suffix) == 5 and set(suffix + template_hash) <= set(workloads.ALPHANUMS)
        assert pod.labels["pod-template-hash"] == template_hash
    assert [p.name for p in loader.load_file(str(TOPOLOGY)).pods] == [p.name for p in lab.pods]


def test_deployment_placement_by_node_selector_and_spread():
    lab = loader.load_file(str(TOPOLOGY))
    assert {p.node for p in lab.pods if p.name.startswith("whoami-")} == {"node-2"}   # nodeSelector zone: b
    assert {p.node for p in lab.pods if p.name.startswith("web-")} == {"node-1", "node-2"}


def test_endpoint_slices_resolve_named_target_ports_and_skip_not_ready():
    lab = loader.load_file(str(TOPOLOGY))
    alloc = ipam.allocate(lab)
    web = next(s for s in lab.services if s.name == "web")
    ready = {p.key: True for p in lab.pods}
    eps = endpoints.slice_endpoints(web, web.ports[1], lab, alloc.pod_ips, ready)
    assert {e.port for e in eps} == {5353} and len(eps) == 3
    first_web = next(p for p in lab.pods if p.name.startswith("web-"))
    ready[first_web.key] = False
    rules = [r for r in endpoints.port_rules(lab, alloc, endpoints.services(lab), ready)
             if r.name == "web" and r.protocol == "udp"]
    assert len(rules) == 1 and len(rules[0].endpoints) == 2 and rules[0].port == 53


def test_each_node_gets_nodeports_on_its_underlay_ip():
    lab = loader.load_file(str(TOPOLOGY))
    alloc = ipam.allocate(lab)
    proxies = endpoints.node_proxies(lab, alloc, {p.key: True for p in lab.pods})
    for name, proxy in proxies.items():
        text = kubeproxy.ruleset(proxy)
        assert f"add element ip kube-proxy nodeport-ips {{ {alloc.nodes[name].underlay_ip} }}" in text
        assert "service-nodeports { tcp . 30080 : goto external-" in text


def test_kubernetes_service_is_implicit_and_unproxied_without_endpoints():
    lab = loader.load_file(str(TOPOLOGY))
    kube = next(s for s in lab.services if s.key == "default/kubernetes")
    assert kube.selector is None and kube.ports[0] == ServicePort(443, Protocol.TCP, "https", 6443)
    assert not clusterip.has_services(loader.load_text(lab_yaml("x"), "f"))   # a lab with no Service of its own
    assert clusterip.has_services(loader.load_file(None))   # the default lab: cluster DNS's kube-system/kube-dns
