"""Zone files for the Kubernetes DNS specification (schema 1.0.1): each row of its record table
as the exact line the zone file carries, what must not be there, the reverse zones, determinism,
name checks; and knot.conf."""
from __future__ import annotations

import random
from ipaddress import IPv4Address, IPv4Network

import pytest

from netlab.core.dnszone import (DnsEndpoint, DnsPod, DnsPort, DnsService, reverse_networks,
                                 reverse_origin, zones)
from netlab.core.knotconf import knot_conf

POD_SUBNET = IPv4Network("172.16.0.0/16")
SERVICE_SUBNET = IPv4Network("172.18.0.0/20")
ip = IPv4Address


def ep(address: str, hostname: str | None = None, ready: bool = True) -> DnsEndpoint:
    return DnsEndpoint(ip(address), hostname, ready)


KUBE_DNS = DnsService("kube-dns", "kube-system", ip("172.18.0.10"),
                      (DnsPort("dns", "UDP", 53), DnsPort("dns-tcp", "TCP", 53), DnsPort("metrics", "TCP", 9153)),
                      (ep("172.16.0.2"), ep("172.16.1.2")))
WEB = DnsService("web", "default", ip("172.18.0.20"), (DnsPort("http", "TCP", 80), DnsPort("", "TCP", 8080)),
                 (ep("172.16.0.5"), ep("172.16.1.5", ready=False)))
DB = DnsService("db", "default", None, (DnsPort("pg", "TCP", 5432),),
                (ep("172.16.0.7", "db-0"), ep("172.16.1.7", "db-1"), ep("172.16.1.8", "db-2", ready=False),
                 ep("172.16.0.9")),
                endpoint_ports=(DnsPort("pg", "TCP", 5432), DnsPort("", "TCP", 9187)))
IDLE = DnsService("idle", "default", None, (DnsPort("http", "TCP", 80),), (ep("172.16.1.9", "idle-0", False),),
                  endpoint_ports=(DnsPort("http", "TCP", 80),))
SEARCH = DnsService("search", "default", None, (DnsPort("http", "TCP", 80),), (ep("172.16.0.11"),),
                    external_name="www.example.com")
SERVICES = (KUBE_DNS, WEB, DB, IDLE, SEARCH)
PODS = (DnsPod("web-1", "default", ip("172.16.0.5")), DnsPod("client", "team-a", ip("172.16.0.6")))


def generate(services=SERVICES, pods=PODS, serial=7, domain="cluster.local"):
    return zones(domain, POD_SUBNET, SERVICE_SUBNET, services, pods, serial).files


def lines(origin: str = "cluster.local", **kw) -> list[str]:
    return generate(**kw)[origin].splitlines()


def owned(name: str, origin: str = "cluster.local", **kw) -> list[str]:
    return [line for line in lines(origin, **kw) if line.split(" ", 1)[0] == name]


# ---- every zone: SOA, NS, TTL 30
def test_the_cluster_zone_starts_with_its_soa_and_ns():
    assert lines()[:7] == [
        "; cluster.local: Kubernetes DNS records (schema 1.0.1) for cluster.local, written by netlab",
        "$ORIGIN cluster.local.",
        "$TTL 30",
        "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 7 7200 1800 86400 30",
        "cluster.local. 30 IN NS ns.dns.cluster.local.",
        "ns.dns.cluster.local. 30 IN A 172.18.0.10",
        'dns-version.cluster.local. 30 IN TXT "1.0.1"',
    ]


def test_every_record_has_ttl_30():
    for origin, text in generate().items():
        for line in text.splitlines():
            if not line.startswith((";", "$")):
                assert line.split(" ")[1:3] == ["30", "IN"], (origin, line)


def test_reverse_zones_have_the_same_soa_and_ns():
    assert lines("0.18.172.in-addr.arpa")[3:5] == [
        "0.18.172.in-addr.arpa. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 7 7200 1800 86400 30",
        "0.18.172.in-addr.arpa. 30 IN NS ns.dns.cluster.local.",
    ]


# ---- 2.2 schema version
def test_dns_version_txt():
    assert owned("dns-version.cluster.local.") == ['dns-version.cluster.local. 30 IN TXT "1.0.1"']


# ---- 2.3 ClusterIP Service
def test_clusterip_a():
    assert owned("web.default.svc.cluster.local.") == ["web.default.svc.cluster.local. 30 IN A 172.18.0.20"]


def test_clusterip_a_exists_without_ready_endpoints():
    lonely = DnsService("lonely", "default", ip("172.18.0.30"), (), ())
    assert owned("lonely.default.svc.cluster.local.", services=(lonely,)) == [
        "lonely.default.svc.cluster.local. 30 IN A 172.18.0.30"]


def test_clusterip_srv_for_named_ports_only():
    srv = [line for line in lines() if " SRV " in line and ".web." in line]
    assert srv == ["_http._tcp.web.default.svc.cluster.local. 30 IN SRV 0 100 80 web.default.svc.cluster.local."]


def test_srv_protocol_labels():
    assert [line for line in lines() if " SRV " in line and "kube-dns" in line] == [
        "_dns-tcp._tcp.kube-dns.kube-system.svc.cluster.local. 30 IN SRV 0 100 53 kube-dns.kube-system.svc.cluster.local.",
        "_metrics._tcp.kube-dns.kube-system.svc.cluster.local. 30 IN SRV 0 100 9153 kube-dns.kube-system.svc.cluster.local.",
        "_dns._udp.kube-dns.kube-system.svc.cluster.local. 30 IN SRV 0 100 53 kube-dns.kube-system.svc.cluster.local.",
    ]


def test_clusterip_ptr():
    assert owned("20.0.18.172.in-addr.arpa.", "0.18.172.in-addr.arpa") == [
        "20.0.18.172.in-addr.arpa. 30 IN PTR web.default.svc.cluster.local."]
    assert owned("10.0.18.172.in-addr.arpa.", "0.18.172.in-addr.arpa") == [
        "10.0.18.172.in-addr.arpa. 30 IN PTR kube-dns.kube-system.svc.cluster.local."]


def test_clusterip_endpoint_names_and_their_ptr_as_coredns():
    assert owned("172-16-0-5.web.default.svc.cluster.local.") == [
        "172-16-0-5.web.default.svc.cluster.local. 30 IN A 172.16.0.5"]
    assert owned("5.0.16.172.in-addr.arpa.", "16.172.in-addr.arpa") == [
        "5.0.16.172.in-addr.arpa. 30 IN PTR 172-16-0-5.web.default.svc.cluster.local."]


def test_not_ready_endpoints_have_no_record():
    text = "\n".join(generate().values())
    for absent in ("172-16-1-5", "172.16.1.5", "5.1.16.172", "db-2", "172.16.1.8", "8.1.16.172", "idle",
                   "172.16.1.9"):
        assert absent not in text


# ---- 2.4 headless Service
def test_headless_a_per_ready_endpoint():
    assert owned("db.default.svc.cluster.local.") == [
        "db.default.svc.cluster.local. 30 IN A 172.16.0.7",
        "db.default.svc.cluster.local. 30 IN A 172.16.0.9",
        "db.default.svc.cluster.local. 30 IN A 172.16.1.7",
    ]


def test_headless_hostnames_and_dashed_ip_when_none():
    assert owned("db-0.db.default.svc.cluster.local.") == ["db-0.db.default.svc.cluster.local. 30 IN A 172.16.0.7"]
    assert owned("db-1.db.default.svc.cluster.local.") == ["db-1.db.default.svc.cluster.local. 30 IN A 172.16.1.7"]
    assert owned("172-16-0-9.db.default.svc.cluster.local.") == [
        "172-16-0-9.db.default.svc.cluster.local. 30 IN A 172.16.0.9"]


def test_headless_hostname_with_two_addresses_has_both():
    pair = DnsService("pair", "default", None, (), (ep("172.16.0.20", "twin"), ep("172.16.0.21", "twin")))
    assert owned("twin.pair.default.svc.cluster.local.", services=(pair,)) == [
        "twin.pair.default.svc.cluster.local. 30 IN A 172.16.0.20",
        "twin.pair.default.svc.cluster.local. 30 IN A 172.16.0.21",
    ]


def test_headless_srv_per_named_port_and_ready_endpoint():
    assert owned("_pg._tcp.db.default.svc.cluster.local.") == [
        "_pg._tcp.db.default.svc.cluster.local. 30 IN SRV 0 33 5432 172-16-0-9.db.default.svc.cluster.local.",
        "_pg._tcp.db.default.svc.cluster.local. 30 IN SRV 0 33 5432 db-0.db.default.svc.cluster.local.",
        "_pg._tcp.db.default.svc.cluster.local. 30 IN SRV 0 33 5432 db-1.db.default.svc.cluster.local.",
    ]
    assert not [line for line in lines() if "9187" in line]      # the unnamed endpoint port


def test_headless_ptr_names_the_endpoint():
    assert owned("7.0.16.172.in-addr.arpa.", "16.172.in-addr.arpa") == [
        "7.0.16.172.in-addr.arpa. 30 IN PTR db-0.db.default.svc.cluster.local."]
    assert owned("9.0.16.172.in-addr.arpa.", "16.172.in-addr.arpa") == [
        "9.0.16.172.in-addr.arpa. 30 IN PTR 172-16-0-9.db.default.svc.cluster.local."]


def test_headless_without_ready_endpoints_has_no_name_at_all():
    assert not [line for line in lines() if "idle" in line]


def test_an_ip_behind_two_services_has_two_ptr():
    other = DnsService("api", "default", None, (), (ep("172.16.0.7", "api-0"),))
    assert owned("7.0.16.172.in-addr.arpa.", "16.172.in-addr.arpa", services=(DB, other)) == [
        "7.0.16.172.in-addr.arpa. 30 IN PTR api-0.api.default.svc.cluster.local.",
        "7.0.16.172.in-addr.arpa. 30 IN PTR db-0.db.default.svc.cluster.local.",
    ]


# ---- 2.5 ExternalName
def test_external_name_is_a_cname_and_nothing_else():
    assert [line for line in lines() if "search" in line] == [
        "search.default.svc.cluster.local. 30 IN CNAME www.example.com."]
    assert "172.16.0.11" not in "\n".join(generate().values())


def test_external_name_with_a_trailing_dot():
    svc = DnsService("x", "default", None, (), (), external_name="db.example.org.")
    assert owned("x.default.svc.cluster.local.", services=(svc,)) == [
        "x.default.svc.cluster.local. 30 IN CNAME db.example.org."]


# ---- 2.6 pod records (pods verified)
def test_pod_a_records_for_existing_pods_in_their_namespace():
    assert [line for line in lines() if ".pod." in line] == [
        "172-16-0-5.default.pod.cluster.local. 30 IN A 172.16.0.5",
        "172-16-0-6.team-a.pod.cluster.local. 30 IN A 172.16.0.6",
    ]


def test_a_pod_that_is_no_endpoint_has_no_ptr():
    assert not owned("6.0.16.172.in-addr.arpa.", "16.172.in-addr.arpa")


# ---- reverse zones
@pytest.mark.parametrize("subnet,origins", [
    ("172.16.0.0/16", ["16.172.in-addr.arpa"]),
    ("172.18.0.0/20", [f"{n}.18.172.in-addr.arpa" for n in range(16)]),
    ("10.96.0.0/12", [f"{n}.10.in-addr.arpa" for n in range(96, 112)]),
    ("10.0.0.0/8", ["10.in-addr.arpa"]),
    ("192.168.7.0/24", ["7.168.192.in-addr.arpa"]),
    ("192.168.7.64/26", ["7.168.192.in-addr.arpa"]),
])
def test_reverse_zones_tile_the_subnet_on_octets(subnet, origins):
    assert [reverse_origin(net) for net in reverse_networks(IPv4Network(subnet))] == origins


def test_zones_are_the_cluster_zone_then_the_reverse_zones_in_address_order():
    assert list(generate()) == ["cluster.local", "16.172.in-addr.arpa"] + [
        f"{n}.18.172.in-addr.arpa" for n in range(16)]


def test_a_ptr_outside_the_reverse_zones_is_left_out():
    host = DnsService("node-exporter", "default", None, (), (ep("10.250.0.11"),))
    files = generate(services=(host,))
    assert "11.0.250.10" not in "\n".join(files.values())
    assert owned("10-250-0-11.node-exporter.default.svc.cluster.local.", services=(host,)) == [
        "10-250-0-11.node-exporter.default.svc.cluster.local. 30 IN A 10.250.0.11"]


# ---- determinism
def test_same_input_in_any_order_gives_byte_identical_files():
    first = generate()
    for seed in range(5):
        services = list(SERVICES)
        random.Random(seed).shuffle(services)
        shuffled = [DnsService(s.name, s.namespace, s.cluster_ip, s.ports,
                               tuple(random.Random(seed).sample(s.endpoints, len(s.endpoints))),
                               s.endpoint_ports, s.external_name) for s in services]
        assert generate(services=shuffled, pods=tuple(reversed(PODS))) == first


def test_the_serial_is_the_callers():
    assert "hostmaster.cluster.local. 8 7200" in generate(serial=8)["cluster.local"]
    with pytest.raises(ValueError):
        generate(serial=2 ** 32)


def test_another_cluster_domain():
    text = generate(domain="lab.example")["lab.example"]
    assert "web.default.svc.lab.example. 30 IN A 172.18.0.20" in text.splitlines()
    assert "lab.example. 30 IN SOA ns.dns.lab.example. hostmaster.lab.example. 7 7200 1800 86400 30" in text


# ---- names that could change a zone file's meaning are refused
@pytest.mark.parametrize("field,value", [
    ("name", "web; evil"), ("name", "web\n$ORIGIN evil."), ("name", "Web"), ("name", "web."),
    ("name", "-web"), ("name", "a" * 64), ("namespace", "de fault"), ("namespace", "(x)"),
    ("external_name", 'www.example.com "x"'), ("external_name", "www..example.com"),
    ("external_name", "www.exa\\mple.com"), ("hostname", "db_0"), ("port", "ht tp"), ("protocol", "ICMP"),
])
def test_invalid_names_raise(field, value):
    svc = DnsService("web", "default", None, (), (ep("172.16.0.5", "db-0"),),
                     endpoint_ports=(DnsPort("http", "TCP", 80),))
    if field in ("name", "namespace", "external_name"):
        svc = DnsService(**{**svc.__dict__, field: value})
    elif field == "hostname":
        svc = DnsService(**{**svc.__dict__, "endpoints": (ep("172.16.0.5", value),)})
    else:
        port = DnsPort(value, "TCP", 80) if field == "port" else DnsPort("http", value, 80)
        svc = DnsService(**{**svc.__dict__, "endpoint_ports": (port,)})
    with pytest.raises(ValueError):
        generate(services=(svc,))


@pytest.mark.parametrize("domain", ["cluster local", "cluster.local;", "", "Cluster.local"])
def test_invalid_domains_raise(domain):
    with pytest.raises(ValueError):
        generate(domain=domain)


def test_a_service_twice_raises():
    with pytest.raises(ValueError):
        generate(services=(WEB, WEB))


# ---- knot.conf
def test_knot_conf():
    assert knot_conf(["cluster.local", "16.172.in-addr.arpa"]) == """\
# knot.conf of a cluster DNS pod, written by netlab: authoritative for the cluster zone
# and its reverse zones, nothing else (other names: REFUSED).
server:
    rundir: "/var/lib/knot"
    listen: [ 0.0.0.0@53 ]
    udp-workers: 2
    tcp-workers: 1
    background-workers: 1

database:
    storage: "/var/lib/knot"

log:
  - target: stderr
    any: info

control:
    listen: "/var/lib/knot/knot.sock"

template:
  - id: default
    storage: "/etc/knot"
    zonefile-load: whole
    zonefile-sync: -1
    journal-content: none
    semantic-checks: on

zone:
  - domain: cluster.local
    file: "/etc/knot/cluster.local.zone"
  - domain: 16.172.in-addr.arpa
    file: "/etc/knot/16.172.in-addr.arpa.zone"
"""


def test_knot_conf_paths_and_listen():
    text = knot_conf(["cluster.local"], conf_dir="/tmp/a/etc", run_dir="/tmp/a/run",
                     listen=("127.0.0.1@5353", "::1@5353"))
    assert '    listen: [ 127.0.0.1@5353, ::1@5353 ]' in text
    assert '    listen: "/tmp/a/run/knot.sock"' in text
    assert '    file: "/tmp/a/etc/cluster.local.zone"' in text


@pytest.mark.parametrize("kw", [
    {"zone_names": ["cluster.local\nzone:"]}, {"zone_names": ["cluster.local."]},
    {"zone_names": ["a", "a"]}, {"zone_names": ["a"], "conf_dir": 'etc"'}, {"zone_names": ["a"], "run_dir": "run"},
    {"zone_names": ["a"], "listen": ["0.0.0.0@53 ]"]},
])
def test_knot_conf_refuses_what_would_change_its_meaning(kw):
    with pytest.raises(ValueError):
        knot_conf(**kw)
