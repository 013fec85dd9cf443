"""The cluster DNS objects the loader adds (kubeadm's DNS addon), pure."""
from __future__ import annotations

from ipaddress import IPv4Address

from netlab.core import clusterip, ipam, plan
from netlab.core.plan import Role
from netlab.model.lab import DnsPolicy, Protocol
from netlab.model.service import ServicePort
from netlab.spec import clusterdns
from netlab.spec.labtext import lab_yaml, pod_yaml
from netlab.spec.loader import load_text


def dns_pods(lab):
    return [p for p in lab.pods if clusterdns.is_dns_pod(p.namespace, p.labels)]


def test_kube_dns_is_kubeadms_service_at_the_10th_address():
    lab = load_text(lab_yaml("x", dns=True), "f")
    svc = next(s for s in lab.services if s.key == "kube-system/kube-dns")
    assert svc.cluster_ip == IPv4Address("172.18.0.10") == lab.networking.dns_service_ip
    assert dict(svc.selector) == {"k8s-app": "kube-dns"}
    assert svc.ports == (ServicePort(53, Protocol.UDP, "dns", 53), ServicePort(53, Protocol.TCP, "dns-tcp", 53),
                         ServicePort(9153, Protocol.TCP, "metrics", 9153))
    alloc = clusterip.allocate(lab.services, lab.networking.service_subnet)
    assert alloc.cluster_ips["kube-system/kube-dns"] == IPv4Address("172.18.0.10")
    assert "kube-system" in [ns.name for ns in lab.namespaces]


def test_coredns_runs_knotd_in_two_replicas_spread_over_the_nodes():
    lab = load_text(lab_yaml("x", nodes=3, dns=True), "f")
    pods = dns_pods(lab)
    assert [p.node for p in pods] == ["node-1", "node-2"]
    hash_ = pods[0].labels["pod-template-hash"]
    assert all(p.name.startswith(f"coredns-{hash_}-") and len(p.name) == len(f"coredns-{hash_}-") + 5 for p in pods)
    (container,) = pods[0].containers
    assert container.name == "coredns" and container.command == ("knotd", "-c", "/etc/knot/knot.conf")
    assert [(p.container_port, p.protocol, p.name) for p in container.ports] == [
        (53, Protocol.UDP, "dns"), (53, Protocol.TCP, "dns-tcp")]   # no metrics: knotd serves none
    assert container.cap_add == ("NET_BIND_SERVICE",) and container.cap_drop == ("ALL",)
    assert all(p.dns_policy is DnsPolicy.DEFAULT for p in pods)   # as kubeadm: the server does not ask itself


def test_a_one_node_lab_has_both_replicas_on_it():
    assert [p.node for p in dns_pods(load_text(lab_yaml("x", nodes=1, dns=True), "f"))] == ["node-1", "node-1"]


def test_disabled_means_no_kube_system_objects():
    lab = load_text(lab_yaml("x"), "f")
    assert not lab.lab.dns_enabled and not dns_pods(lab)
    assert [s.key for s in lab.services] == ["default/kubernetes"]
    assert "kube-system" not in [ns.name for ns in lab.namespaces]


def test_a_backend_whose_pods_sit_on_the_underlay_has_no_cluster_dns_unless_asked():
    text = lab_yaml("x", backend="macvlan").replace("  dns: {enabled: false}\n", "")
    lab = load_text(text, "f")
    assert not lab.lab.dns_enabled and not dns_pods(lab)


def test_the_files_pods_keep_their_addresses_with_dns_on():
    pods = pod_yaml("a", "node-1") + pod_yaml("b", "node-2") + pod_yaml("c", "node-1")
    off = load_text(lab_yaml("x", pods=pods), "f")
    on = load_text(lab_yaml("x", pods=pods, dns=True), "f")
    ips_off, ips_on = ipam.allocate(off).pod_ips, ipam.allocate(on).pod_ips
    assert {k: ips_on[k] for k in ips_off} == ips_off
    assert len(ips_on) == len(ips_off) + 2


def test_a_changed_dns_policy_rebuilds_the_pods_sandbox():
    def fingerprint(extra: str) -> str:
        text = lab_yaml("x", pods=pod_yaml("a", "node-1").replace("spec:\n", "spec:\n" + extra))
        lab = load_text(text, "f")
        return plan.build(lab, ipam.allocate(lab)).find(Role.POD, "default/a").fingerprint
    assert fingerprint("") == fingerprint("  dnsPolicy: ClusterFirst\n")
    assert fingerprint("") != fingerprint("  dnsPolicy: Default\n")
