"""Cluster DNS on real namespaces: Knot DNS in the kube-system/coredns pods behind kube-dns.

topologies/dns.yaml is built once (under a name unique to the run). Every lookup runs inside a
pod, in all of its namespaces (so with the pod's own /etc/resolv.conf), through real resolvers:
glibc (`getent`), and `dig`/`host` from bind9-dnsutils. The expected answers come from the lab
record (ClusterIPs, endpoint and pod addresses), never from the zone files netlab wrote.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netlab.kernel import procs
from netlab.ops import lab as lab_ops, state
from netlab.ops.record import LabRecord, PodRecord
from netlab.spec import loader
from tests.support.kernel import netlab
from tests.support.labs import lab_name

pytestmark = pytest.mark.root

TOPOLOGY = Path(__file__).parents[2] / "topologies" / "dns.yaml"
DNS_IP = "172.18.0.10"
ZONE = "cluster.local"
TOOLS = ("knotd", "knotc", "dig", "host", "getent", "nsenter")

# Runs in a pod's network namespace: one TCP connection attempt, prints "open" or the error's name.
CONNECT = ("import socket, sys\n"
           "try:\n"
           "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()\n"
           "    print('open')\n"
           "except OSError as err:\n"
           "    print(type(err).__name__)\n")


def _missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    missing = _missing_tools()
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install knot bind9-dnsutils)")
    name = lab_name("dns")
    text = TOPOLOGY.read_text().replace("name: dns\n", f"name: {name}\n", 1)
    path = tmp_path_factory.mktemp("dns") / "dns.yaml"
    path.write_text(text)
    host_etc = sorted(os.listdir("/etc/knot")), sorted(os.listdir("/var/lib/knot"))
    lab_ops.up(loader.load_file(str(path)))
    try:
        yield path
    finally:
        lab_ops.down(name)
        # the DNS pods' volumes were bound in their mount namespaces only: the host's dirs are untouched
        assert (sorted(os.listdir("/etc/knot")), sorted(os.listdir("/var/lib/knot"))) == host_etc


def record_of(path: Path) -> LabRecord:
    return state.load(loader.load_file(str(path)).lab.name)


def pod(record: LabRecord, key: str) -> PodRecord:
    found = record.pod(key if "/" in key else f"default/{key}")
    assert found is not None, key
    return found


def pods_of(record: LabRecord, prefix: str, namespace: str = "default") -> list[PodRecord]:
    return [p for p in record.pods if p.namespace == namespace and p.name.startswith(prefix)]


def dns_pods(record: LabRecord) -> list[PodRecord]:
    return [p for p in record.pods if p.namespace == "kube-system" and p.labels.get("k8s-app") == "kube-dns"]


def cluster_ip(record: LabRecord, key: str) -> str:
    return next(s.cluster_ip for s in record.services if s.key == key)


def in_pod(record: LabRecord, name: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """argv in every namespace of the pod (its /etc/resolv.conf, /etc/hosts, network)."""
    init = pod(record, name).sandbox
    assert init is not None, f"{name} has no sandbox"
    return subprocess.run(["nsenter", f"--target={init.pid}", "--mount", "--uts", "--ipc", "--net", "--pid",
                           "--", *argv], capture_output=True, text=True, timeout=timeout)


def dig(record: LabRecord, *args: str, client: str = "client") -> list[str]:
    """dig +short through the pod's resolver configuration; the answer lines."""
    out = in_pod(record, client, "dig", "+short", "+time=2", "+tries=1", *args)
    assert out.returncode == 0, out.stderr + out.stdout
    return [line for line in out.stdout.splitlines() if line and not line.startswith(";")]


def status_of(record: LabRecord, *args: str, client: str = "client") -> tuple[str, str]:
    """dig's status (NOERROR, NXDOMAIN, REFUSED, ...) and the whole output."""
    out = in_pod(record, client, "dig", "+time=2", "+tries=1", *args)
    for line in out.stdout.splitlines():
        if "status:" in line:
            return line.split("status:")[1].split(",")[0].strip(), out.stdout
    raise AssertionError(f"no answer from dig {' '.join(args)}: {out.stdout}{out.stderr}")


def getent(record: LabRecord, *args: str, client: str = "client") -> tuple[int, list[list[str]]]:
    out = in_pod(record, client, "getent", *args)
    return out.returncode, [line.split() for line in out.stdout.splitlines()]


def test_resolv_conf_names_kube_dns_and_the_search_list(lab):
    record = record_of(lab)
    text = in_pod(record, "client", "cat", "/etc/resolv.conf").stdout
    assert f"nameserver {DNS_IP}" in text.splitlines()
    assert f"search default.svc.{ZONE} svc.{ZONE} {ZONE}" in text.splitlines()
    assert "options ndots:5" in text.splitlines()


def test_short_name_through_the_search_list(lab):
    record = record_of(lab)
    code, lines = getent(record, "hosts", "web")
    assert code == 0 and lines[0][0] == cluster_ip(record, "default/web")
    assert f"web.default.svc.{ZONE}" in lines[0][1:]   # the name the search list made


def test_other_namespace_by_service_and_namespace(lab):
    record = record_of(lab)
    code, lines = getent(record, "hosts", "kube-dns.kube-system")
    assert code == 0 and lines[0][0] == DNS_IP


def test_getent_ahosts_fqdn(lab):
    record = record_of(lab)
    code, lines = getent(record, "ahosts", f"web.default.svc.{ZONE}")
    assert code == 0
    assert {line[0] for line in lines} == {cluster_ip(record, "default/web")}
    assert {line[1] for line in lines} >= {"STREAM", "DGRAM"}


def test_fqdn_with_dig_is_authoritative_with_ttl_30(lab):
    record = record_of(lab)
    code, out = status_of(record, f"web.default.svc.{ZONE}")
    assert code == "NOERROR" and " aa" in out.split("flags:")[1].split(";")[0]
    answer = [line.split() for line in out.splitlines() if line.startswith(f"web.default.svc.{ZONE}.")]
    assert answer == [[f"web.default.svc.{ZONE}.", "30", "IN", "A", cluster_ip(record, "default/web")]]


def test_srv_for_named_ports(lab):
    record = record_of(lab)
    http = dig(record, "SRV", f"_http._tcp.web.default.svc.{ZONE}")
    assert [line.split()[2:] for line in http] == [["80", f"web.default.svc.{ZONE}."]]
    metrics = dig(record, "SRV", f"_metrics._tcp.web.default.svc.{ZONE}")
    assert [line.split()[2:] for line in metrics] == [["9100", f"web.default.svc.{ZONE}."]]
    host = in_pod(record, "client", "host", "-t", "SRV", f"_dns._udp.kube-dns.kube-system.svc.{ZONE}")
    assert host.returncode == 0 and f"53 kube-dns.kube-system.svc.{ZONE}." in host.stdout


def test_ptr_for_a_service_ip(lab):
    record = record_of(lab)
    assert dig(record, "-x", cluster_ip(record, "default/web")) == [f"web.default.svc.{ZONE}."]
    assert dig(record, "-x", DNS_IP) == [f"kube-dns.kube-system.svc.{ZONE}."]


def test_ptr_for_endpoint_pod_ips_leads_back_to_them(lab):
    record = record_of(lab)
    for target in pods_of(record, "db-") + pods_of(record, "web-"):
        names = dig(record, "-x", target.ip)
        service = target.name.split("-")[0]
        assert names == [f"{target.ip.replace('.', '-')}.{service}.default.svc.{ZONE}."], target.key
        assert dig(record, names[0]) == [target.ip]   # and that name leads back to the pod
    # a pod that is no endpoint has no PTR (CoreDNS indexes no pods for reverse lookups), but the
    # server is authoritative for the pod subnet: NXDOMAIN, not REFUSED
    assert status_of(record, "-x", pod(record, "client").ip)[0] == "NXDOMAIN"


def test_pod_a_record(lab):
    record = record_of(lab)
    client = pod(record, "client")
    assert dig(record, f"{client.ip.replace('.', '-')}.default.pod.{ZONE}") == [client.ip]


def test_headless_one_a_per_ready_endpoint(lab):
    record = record_of(lab)
    db_ips = sorted(p.ip for p in pods_of(record, "db-"))
    assert len(db_ips) == 2
    assert sorted(dig(record, f"db.default.svc.{ZONE}")) == db_ips
    code, lines = getent(record, "ahosts", "db")
    assert code == 0 and sorted({line[0] for line in lines}) == db_ips


def test_headless_endpoint_hostname_records(lab):
    record = record_of(lab)
    for ip in (p.ip for p in pods_of(record, "db-")):
        # an endpoint without a hostname is named by its address, as CoreDNS names it
        assert dig(record, f"{ip.replace('.', '-')}.db.default.svc.{ZONE}") == [ip]
    srv = dig(record, "SRV", f"_pg._tcp.db.default.svc.{ZONE}")
    assert sorted(line.split()[2:] for line in srv) == sorted(
        ["5432", f"{p.ip.replace('.', '-')}.db.default.svc.{ZONE}."] for p in pods_of(record, "db-"))


def test_nxdomain_and_nodata(lab):
    record = record_of(lab)
    assert status_of(record, f"nobody.default.svc.{ZONE}")[0] == "NXDOMAIN"   # headless, no endpoints
    assert status_of(record, f"missing.default.svc.{ZONE}")[0] == "NXDOMAIN"
    code, out = status_of(record, f"web.default.svc.{ZONE}", "AAAA")           # the name exists: NODATA
    assert code == "NOERROR" and "ANSWER: 0" in out
    assert getent(record, "hosts", "missing")[0] == 2                        # glibc: not found


def test_tcp(lab):
    record = record_of(lab)
    out = in_pod(record, "client", "dig", "+tcp", f"web.default.svc.{ZONE}")
    assert f"({DNS_IP}) (TCP)" in out.stdout
    assert cluster_ip(record, "default/web") in out.stdout.split("ANSWER SECTION:")[1]


def test_dns_version(lab):
    record = record_of(lab)
    assert dig(record, "TXT", f"dns-version.{ZONE}") == ['"1.0.1"']


def test_external_name_is_a_cname(lab):
    record = record_of(lab)
    assert dig(record, "CNAME", f"upstream.default.svc.{ZONE}") == ["www.example.com."]


def test_outside_the_zone_is_refused_at_once(lab):
    record = record_of(lab)
    started = time.monotonic()
    code, _ = status_of(record, "www.example.com")
    assert code == "REFUSED"
    assert time.monotonic() - started < 2   # dig waits 2 s per try: an answer came, not a timeout


def test_dns_pods_volumes_are_theirs_only(lab):
    record = record_of(lab)
    name = record.name
    for dns_pod in dns_pods(record):
        key = dns_pod.key
        conf = in_pod(record, key, "cat", "/etc/knot/knot.conf")
        assert conf.returncode == 0
        assert conf.stdout == (state.lab_dir(name) / "dns" / "etc" / "knot.conf").read_text()
        touched = in_pod(record, key, "touch", "/etc/knot/x")
        assert touched.returncode != 0 and "Read-only" in touched.stderr
        assert (state.lab_dir(name) / "dns" / dns_pod.name / "knot.sock").is_socket()
    # a pod that is not a DNS pod sees the host's own /etc/knot
    assert in_pod(record, "client", "ls", "/etc/knot").stdout.split() == sorted(os.listdir("/etc/knot"))


def test_status_shows_the_dns_service_and_pods(lab):
    record = record_of(lab)
    out = json.loads(netlab("status", "--name", record.name, "--json", check=True).stdout)
    info = out["dns"]
    assert info["service"] == "kube-system/kube-dns" and info["clusterIP"] == DNS_IP
    assert ZONE in info["zones"] and info["domain"] == ZONE
    assert sorted(p["pod"] for p in info["pods"]) == sorted(p.key for p in dns_pods(record))
    assert all(p["ready"] and p["running"] for p in info["pods"])
    assert len({p["node"] for p in info["pods"]}) == 2   # spread over the nodes
    table = netlab("status", "--name", record.name, check=True).stdout
    assert "cluster DNS" in table and "9153" in table


def test_netlab_dig_uses_the_pods_search_list(lab):
    record = record_of(lab)
    out = netlab("dig", "--name", record.name, "client", "web", "+search", "+short", check=True)
    assert out.stdout.split() == [cluster_ip(record, "default/web")]
    nx = netlab("dig", "--name", record.name, "client", "web", "+nosearch")
    assert "status: REFUSED" in nx.stdout   # `web.` alone is outside the cluster's zones


def test_egress_denied_but_dns_still_resolves(lab):
    record = record_of(lab)
    web = cluster_ip(record, "default/web")
    code, lines = getent(record, "hosts", "web", client="locked")
    assert code == 0 and lines[0][0] == web
    assert dig(record, "+tcp", f"db.default.svc.{ZONE}", client="locked")   # DNS over TCP allowed too
    connect = [sys.executable, "-c", CONNECT, web, "80", "2"]
    assert in_pod(record, "client", *connect).stdout.strip() == "open"
    assert in_pod(record, "locked", *connect).stdout.strip() != "open"   # every other egress denied


def test_apply_adds_a_service_resolvable_within_a_second(lab, tmp_path):
    record = record_of(lab)
    added = lab.read_text() + ("---\napiVersion: v1\nkind: Service\nmetadata: {name: late, namespace: default}\n"
                               "spec:\n  selector: {app: web}\n  ports: [{name: http, port: 80, targetPort: http}]\n")
    path = tmp_path / "dns.yaml"
    path.write_text(added)
    assert status_of(record, f"late.default.svc.{ZONE}")[0] == "NXDOMAIN"
    try:
        netlab("apply", str(path), check=True)
        done = time.monotonic()
        record = state.load(record.name)
        want = cluster_ip(record, "default/late")
        while True:   # a correctness bound: the answer must be there within a second of apply
            answers = dig(record, f"late.default.svc.{ZONE}")
            if answers == [want] or time.monotonic() - done > 1.0:
                break
        assert answers == [want]
    finally:
        netlab("apply", str(lab), check=True)
    assert status_of(record, f"late.default.svc.{ZONE}")[0] == "NXDOMAIN"   # and gone with the Service


def test_one_dns_pod_down_lookups_still_answer(lab):
    record = record_of(lab)
    down, up = dns_pods(record)
    knotd = down.containers[0]
    os.kill(knotd.pid, signal.SIGKILL)
    try:
        deadline = time.monotonic() + 5
        while procs.alive(knotd) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not procs.alive(knotd)
        direct = in_pod(record, "client", "dig", "+time=1", "+tries=1", f"@{down.ip}", f"web.default.svc.{ZONE}")
        assert "connection refused" in direct.stdout or direct.returncode != 0   # that server is gone
        netlab("apply", str(lab), check=True)   # readiness: its endpoint leaves kube-dns
        info = json.loads(netlab("status", "--name", record.name, "--json", check=True).stdout)["dns"]
        assert {p["pod"]: p["ready"] for p in info["pods"]} == {down.key: False, up.key: True}
        web = cluster_ip(record, "default/web")
        for _ in range(10):   # each through the Service: every answer comes from the pod left
            code, lines = getent(record, "hosts", "web")
            assert code == 0 and lines[0][0] == web
            assert dig(record, "+tcp", f"web.default.svc.{ZONE}") == [web]
    finally:
        lab_ops.up(loader.load_file(str(lab)))   # restarts the stopped knotd
    info = json.loads(netlab("status", "--name", record.name, "--json", check=True).stdout)["dns"]
    assert all(p["ready"] and p["running"] for p in info["pods"])


def test_a_volume_whose_target_is_missing_is_refused_by_the_pods_init(tmp_path):
    """The launcher's own check, below the preflight: nothing is created for the missing target,
    and no pod is left (the init fails before it execs the pause process)."""
    from netlab.kernel import sandbox
    sandbox.write_pod_files(str(tmp_path / "probe"), "172.16.0.9", "probe", "nameserver 127.0.0.1\n")
    missing = tmp_path / "not-there"
    with sandbox.Launcher() as launcher:
        (result,) = launcher.start_pods(lab_name("mnt"), [sandbox.PodStart(
            "default/probe", "/proc/self/ns/net", "probe", str(tmp_path / "probe"), (sandbox.Mount(str(tmp_path), str(missing)),))])
    assert isinstance(result, OSError) and f"{missing} does not exist" in str(result)
    assert not missing.exists()
