"""ops/dns.py without a kernel: which pods are DNS pods, the records handed to the zone generator,
the preflight, and how the zone files are written (the serial rises only when a zone changes)."""
from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from netlab.core import dnszone
from netlab.errors import KernelFeatureMissing
from netlab.model.lab import Pod
from netlab.ops import dns
from netlab.ops.record import (EndpointRecord, LabRecord, Networking, PodRecord, PortRecord, ServicePortRecord,
                               ServiceRecord)
from netlab.spec import loader

DNS_POD = PodRecord("coredns-abc-12345", "kube-system", "node-1", "172.16.0.5", "l.kube-system.coredns-abc-12345",
                    {"k8s-app": "kube-dns"}, (PortRecord(53, "UDP", "dns"), PortRecord(53, "TCP", "dns-tcp")))
DB = PodRecord("db-0", "default", "node-2", "172.16.1.4", "l.default.db-0", {"app": "db"},
               (PortRecord(5432, "TCP", "pg"),))
WEB = ServiceRecord("web", "default", "ClusterIP", "172.18.11.30", (ServicePortRecord("http", 80, 8080, "TCP"),),
                    (EndpointRecord("default/db-0", "172.16.1.4", True, "node-2"),))
HEADLESS = ServiceRecord("db", "default", "ClusterIP", "None", (ServicePortRecord("pg", 5432, "pg", "TCP"),),
                         (EndpointRecord("default/db-0", "172.16.1.4", True, "node-2"),))
EXTERNAL = ServiceRecord("up", "default", "ExternalName", None, (), (), None, "www.example.com")


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    monkeypatch.setenv("NETLAB_RUN_DIR", str(folder))
    return folder


def lab_record(name: str, services=(), pods=(DNS_POD, DB)) -> LabRecord:
    return LabRecord(name=name, backend="vxlan", source="<test>",
                     networking=Networking("172.16.0.0/16", "172.18.0.0/20", "cluster.local"),
                     pods=pods, services=services)


def test_dns_pods_are_kube_system_pods_labelled_kube_dns():
    assert dns.is_dns_pod("kube-system", {"k8s-app": "kube-dns"})
    assert not dns.is_dns_pod("default", {"k8s-app": "kube-dns"})
    assert not dns.is_dns_pod("kube-system", {"k8s-app": "other"})
    assert dns.dns_pods([DNS_POD, DB]) == [DNS_POD]


def test_records_from_the_lab_record():
    services, pods = dns.dns_records([WEB, HEADLESS, EXTERNAL], [DNS_POD, DB])
    web, headless, external = services
    assert web.cluster_ip == IPv4Address("172.18.11.30")
    assert web.ports == (dnszone.DnsPort("http", "TCP", 80),) and web.endpoint_ports == ()
    assert headless.cluster_ip is None
    # a headless Service's SRV names the endpoints' ports: the named targetPort resolved in the pod
    assert headless.endpoint_ports == (dnszone.DnsPort("pg", "TCP", 5432),)
    assert headless.endpoints == (dnszone.DnsEndpoint(IPv4Address("172.16.1.4"), None, True, "node-2"),)
    assert external.external_name == "www.example.com" and external.cluster_ip is None
    assert pods == [dnszone.DnsPod("coredns-abc-12345", "kube-system", IPv4Address("172.16.0.5")),
                    dnszone.DnsPod("db-0", "default", IPv4Address("172.16.1.4"))]


def test_volumes_only_for_dns_pods(run_dir):
    ro, rw = dns.pod_mounts("mountlab", DNS_POD)
    assert (ro.target, ro.readonly) == ("/etc/knot", True) and ro.source.endswith("/mountlab/dns/etc")
    assert (rw.target, rw.readonly) == ("/var/lib/knot", False) and rw.source.endswith(f"/dns/{DNS_POD.name}")
    assert (run_dir / "mountlab" / "dns" / DNS_POD.name).is_dir()
    assert dns.pod_mounts("mountlab", DB) == ()


def test_preflight_names_the_package(monkeypatch, tmp_path):
    labfile = loader.load_file(str(Path(__file__).parents[2] / "topologies" / "services.yaml"))
    labfile = replace(labfile, pods=tuple(p for p in labfile.pods if not dns.is_dns_pod(p.namespace, p.labels)))
    dns.check(labfile)   # no DNS pod: nothing asked
    monkeypatch.setattr(dns.shutil, "which", lambda tool: None)
    dns.check(labfile)
    coredns = Pod("coredns-x", "kube-system", "node-1", {"k8s-app": "kube-dns"})
    labfile = replace(labfile, pods=labfile.pods + (coredns,))
    with pytest.raises(KernelFeatureMissing, match="apt-get install knot") as err:
        dns.check(labfile)
    assert "`knotd`" in str(err.value) and "nothing was created" in str(err.value)
    monkeypatch.setattr(dns.shutil, "which", lambda tool: f"/usr/sbin/{tool}")
    monkeypatch.setattr(dns, "CONF_DIR", str(tmp_path / "no-such-dir"))
    with pytest.raises(KernelFeatureMissing, match="no-such-dir"):
        dns.check(labfile)


def test_write_raises_the_serial_only_when_a_zone_changes(run_dir):
    record = lab_record("zonelab", services=(WEB,))
    first = dns.write(record, record.services)
    folder = run_dir / "zonelab" / "dns" / "etc"
    assert first.changed and first.conf_changed and "cluster.local" in first.zones
    assert sorted(p.name for p in folder.iterdir()) == sorted(["knot.conf"] + [f"{z}.zone" for z in first.zones])
    again = dns.write(record, record.services)
    assert (again.serial, again.changed, again.conf_changed) == (first.serial, False, False)
    more = dns.write(record, (WEB, HEADLESS))
    assert more.changed and more.serial > first.serial and not more.conf_changed
    assert str(more.serial) in (folder / "cluster.local.zone").read_text()


def test_converge_without_dns_pods_does_nothing(run_dir):
    assert dns.converge(lab_record("nodns", services=(WEB,), pods=(DB,))) is None
    assert not (run_dir / "nodns").exists()


def test_status_shows_cluster_dns_only_for_labs_with_dns_pods(run_dir):
    from netlab.tools import render   # rich: only the tests that render
    kube_dns = ServiceRecord("kube-dns", "kube-system", "ClusterIP", "172.18.0.10",
                             (ServicePortRecord("dns", 53, 53, "UDP"),),
                             (EndpointRecord(DNS_POD.key, DNS_POD.ip, False, "node-1"),))
    record = lab_record("statuslab", services=(WEB, kube_dns))
    dns.write(record, record.services)
    info = render.status_json(record)["dns"]
    assert info["service"] == "kube-system/kube-dns" and info["clusterIP"] == "172.18.0.10"
    assert "cluster.local" in info["zones"] and "9153" in info["metrics"]
    assert info["pods"] == [{"pod": DNS_POD.key, "node": "node-1", "ip": "172.16.0.5", "ready": False,
                             "running": False}]
    assert "dns" not in render.status_json(lab_record("plain", services=(WEB,), pods=(DB,)))
