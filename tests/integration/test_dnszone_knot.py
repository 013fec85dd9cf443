"""The generated zone files and knot.conf served by the real knotd (Knot DNS 3.2), queried with
dig over UDP and TCP: the answers, the response codes, the AA flag and the TTL the Kubernetes DNS
specification asks for, and a reload after a zone file changed.

knotd runs in a network namespace of its own (`unshare --net`: it goes away with the process),
with its files in the test's temporary directory; dig joins that namespace with nsenter."""
from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from netlab.core.dnszone import DnsEndpoint, DnsPod, DnsPort, DnsService, zones
from netlab.core.knotconf import knot_conf, zone_file

pytestmark = pytest.mark.root

MISSING = [tool for tool in ("knotd", "knotc", "dig", "nsenter", "unshare", "ip") if shutil.which(tool) is None]
if MISSING:
    pytest.skip(f"{', '.join(MISSING)} not installed (apt-get install knot bind9-dnsutils)",
                allow_module_level=True)

DOMAIN = "cluster.local"
POD_SUBNET = IPv4Network("172.16.0.0/16")
SERVICE_SUBNET = IPv4Network("172.18.0.0/20")


def ip(text: str) -> IPv4Address:
    return IPv4Address(text)


def services(web_ip: str = "172.18.0.20") -> list[DnsService]:
    return [
        DnsService("kube-dns", "kube-system", ip("172.18.0.10"),
                   (DnsPort("dns", "UDP", 53), DnsPort("dns-tcp", "TCP", 53), DnsPort("metrics", "TCP", 9153)),
                   (DnsEndpoint(ip("172.16.0.2"), None, True), DnsEndpoint(ip("172.16.1.2"), None, True))),
        DnsService("web", "default", ip(web_ip), (DnsPort("http", "TCP", 80), DnsPort("", "TCP", 8080)),
                   (DnsEndpoint(ip("172.16.0.5"), None, True), DnsEndpoint(ip("172.16.1.5"), None, False))),
        DnsService("db", "default", None, (DnsPort("pg", "TCP", 5432),),
                   (DnsEndpoint(ip("172.16.0.7"), "db-0", True), DnsEndpoint(ip("172.16.1.7"), "db-1", True),
                    DnsEndpoint(ip("172.16.1.8"), "db-2", False)),
                   endpoint_ports=(DnsPort("pg", "TCP", 5432),)),
        DnsService("idle", "default", None, (DnsPort("http", "TCP", 80),),
                   (DnsEndpoint(ip("172.16.1.9"), "idle-0", False),), endpoint_ports=(DnsPort("http", "TCP", 80),)),
        DnsService("search", "default", None, (), (), external_name="www.example.com"),
    ]


PODS = [DnsPod("web-1", "default", ip("172.16.0.5")), DnsPod("client", "default", ip("172.16.0.6"))]


def write_zones(etc: Path, serial: int, web_ip: str = "172.18.0.20") -> tuple[str, ...]:
    generated = zones(DOMAIN, POD_SUBNET, SERVICE_SUBNET, services(web_ip), PODS, serial)
    for origin, text in generated.files.items():
        Path(zone_file(origin, str(etc))).write_text(text)
    return generated.origins


@dataclass
class Answer:
    status: str
    flags: set[str]
    answer: list[tuple[str, int, str, str]]      # name, ttl, type, data
    authority: list[tuple[str, int, str, str]]


class Knot:
    def __init__(self, root: Path):
        self.etc, self.run = root / "etc", root / "run"
        self.etc.mkdir()
        self.run.mkdir()
        self.origins = write_zones(self.etc, 1)
        self.conf = self.etc / "knot.conf"
        self.conf.write_text(knot_conf(self.origins, conf_dir=str(self.etc), run_dir=str(self.run)))
        self.log = root / "knotd.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        check = subprocess.run(["knotc", "-c", str(self.conf), "conf-check"], capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        with open(self.log, "w") as log:
            # unshare execs the shell in a new network namespace, the shell execs knotd: one process
            self.proc = subprocess.Popen(
                ["unshare", "--net", "sh", "-c", f'ip link set lo up && exec knotd -c "{self.conf}"'],
                stdout=log, stderr=subprocess.STDOUT)
        for _ in range(200):     # a bound on the wait, not a timing assertion
            if self.proc.poll() is not None:
                raise AssertionError(f"knotd exited: {self.log.read_text()}")
            if self.knotc("zone-status", check=False).returncode == 0 and \
                    self.dig(DOMAIN, "SOA", check_alive=False).status == "NOERROR":
                return
            time.sleep(0.05)
        raise AssertionError(f"knotd did not answer: {self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def knotc(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["knotc", "-s", str(self.run / "knot.sock"), *args], capture_output=True, text=True)
        if check:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    def dig(self, name: str, rtype: str = "A", tcp: bool = False, check_alive: bool = True) -> Answer:
        argv = ["nsenter", f"--net=/proc/{self.proc.pid}/ns/net", "dig", "@127.0.0.1", "+norec",
                "+time=2", "+tries=1", "+nocmd", "+noall", "+comments", "+answer", "+authority",
                "+tcp" if tcp else "+notcp", name, rtype]
        out = subprocess.run(argv, capture_output=True, text=True).stdout
        if check_alive:
            assert "->>HEADER<<-" in out, f"no answer to {name} {rtype}: {out}"
        return parse(out)


def parse(out: str) -> Answer:
    status, flags, section = "", set(), ""
    answer, authority = [], []
    for line in out.splitlines():
        if "->>HEADER<<-" in line:
            status = line.split("status: ")[1].split(",")[0]
        elif line.startswith(";; flags:"):
            flags = set(line.split(";; flags:")[1].split(";")[0].split())
        elif line.startswith(";; ANSWER SECTION"):
            section = "answer"
        elif line.startswith(";; AUTHORITY SECTION"):
            section = "authority"
        elif line.startswith(";") or not line.strip():
            continue
        else:
            name, ttl, _class, rtype, *data = line.split()
            record = (name, int(ttl), rtype, " ".join(data))
            (answer if section == "answer" else authority).append(record)
    return Answer(status, flags, answer, authority)


@pytest.fixture(scope="module")
def knot(tmp_path_factory):
    server = Knot(tmp_path_factory.mktemp("knot"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


def soa(apex: str = "cluster.local.") -> tuple[str, int, str, str]:
    return (apex, 30, "SOA", "ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 30")

POSITIVE = [
    ("dns-version.cluster.local", "TXT", [("dns-version.cluster.local.", 30, "TXT", '"1.0.1"')]),
    ("web.default.svc.cluster.local", "A", [("web.default.svc.cluster.local.", 30, "A", "172.18.0.20")]),
    ("_http._tcp.web.default.svc.cluster.local", "SRV",
     [("_http._tcp.web.default.svc.cluster.local.", 30, "SRV", "0 100 80 web.default.svc.cluster.local.")]),
    ("_dns._udp.kube-dns.kube-system.svc.cluster.local", "SRV",
     [("_dns._udp.kube-dns.kube-system.svc.cluster.local.", 30, "SRV",
       "0 100 53 kube-dns.kube-system.svc.cluster.local.")]),
    ("20.0.18.172.in-addr.arpa", "PTR", [("20.0.18.172.in-addr.arpa.", 30, "PTR", "web.default.svc.cluster.local.")]),
    ("db.default.svc.cluster.local", "A", [("db.default.svc.cluster.local.", 30, "A", "172.16.0.7"),
                                           ("db.default.svc.cluster.local.", 30, "A", "172.16.1.7")]),
    ("db-1.db.default.svc.cluster.local", "A", [("db-1.db.default.svc.cluster.local.", 30, "A", "172.16.1.7")]),
    ("_pg._tcp.db.default.svc.cluster.local", "SRV",
     [("_pg._tcp.db.default.svc.cluster.local.", 30, "SRV", "0 50 5432 db-0.db.default.svc.cluster.local."),
      ("_pg._tcp.db.default.svc.cluster.local.", 30, "SRV", "0 50 5432 db-1.db.default.svc.cluster.local.")]),
    ("7.0.16.172.in-addr.arpa", "PTR", [("7.0.16.172.in-addr.arpa.", 30, "PTR", "db-0.db.default.svc.cluster.local.")]),
    ("5.0.16.172.in-addr.arpa", "PTR",
     [("5.0.16.172.in-addr.arpa.", 30, "PTR", "172-16-0-5.web.default.svc.cluster.local.")]),
    ("search.default.svc.cluster.local", "CNAME",
     [("search.default.svc.cluster.local.", 30, "CNAME", "www.example.com.")]),
    ("172-16-0-6.default.pod.cluster.local", "A", [("172-16-0-6.default.pod.cluster.local.", 30, "A", "172.16.0.6")]),
    ("cluster.local", "NS", [("cluster.local.", 30, "NS", "ns.dns.cluster.local.")]),
    ("ns.dns.cluster.local", "A", [("ns.dns.cluster.local.", 30, "A", "172.18.0.10")]),
]


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize("name,rtype,expected", POSITIVE, ids=[f"{n} {t}" for n, t, _ in POSITIVE])
def test_records_are_served_authoritatively_with_ttl_30(knot, name, rtype, expected, tcp):
    answer = knot.dig(name, rtype, tcp=tcp)
    assert answer.status == "NOERROR"
    assert "aa" in answer.flags
    assert sorted(answer.answer) == sorted(expected)


NXDOMAIN = [
    ("missing.default.svc.cluster.local", "A"),            # no such Service
    ("idle.default.svc.cluster.local", "A"),               # headless, no ready endpoint (spec 2.4.1)
    ("idle-0.idle.default.svc.cluster.local", "A"),        # its not-ready endpoint
    ("db-2.db.default.svc.cluster.local", "A"),            # a not-ready endpoint of a headless Service
    ("172-16-1-5.web.default.svc.cluster.local", "A"),     # a not-ready endpoint of a ClusterIP Service
    ("_https._tcp.web.default.svc.cluster.local", "SRV"),  # no such port
    ("172-16-9-9.default.pod.cluster.local", "A"),         # no such pod (pods verified)
    ("172-16-0-6.other.pod.cluster.local", "A"),           # the pod is in another namespace
    ("8.1.16.172.in-addr.arpa", "PTR"),                    # not-ready endpoint: no PTR
    ("6.0.16.172.in-addr.arpa", "PTR"),                    # a pod that is no endpoint: no PTR
    ("99.0.18.172.in-addr.arpa", "PTR"),                   # an unallocated ClusterIP
]
APEX = {"8.1.16.172.in-addr.arpa": "16.172.in-addr.arpa.", "6.0.16.172.in-addr.arpa": "16.172.in-addr.arpa.",
        "99.0.18.172.in-addr.arpa": "0.18.172.in-addr.arpa."}


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize("name,rtype", NXDOMAIN, ids=[f"{n} {t}" for n, t in NXDOMAIN])
def test_missing_names_are_nxdomain_with_the_soa(knot, name, rtype, tcp):
    answer = knot.dig(name, rtype, tcp=tcp)
    assert answer.status == "NXDOMAIN"
    assert "aa" in answer.flags
    assert answer.answer == []
    assert answer.authority == [soa(APEX.get(name, "cluster.local."))]


NODATA = [
    ("web.default.svc.cluster.local", "AAAA"),    # the name exists with another type
    ("_http._tcp.web.default.svc.cluster.local", "A"),
    ("svc.cluster.local", "A"),                   # empty non-terminals, as CoreDNS answers them
    ("default.svc.cluster.local", "A"),
    ("pod.cluster.local", "A"),
    ("_tcp.web.default.svc.cluster.local", "SRV"),
    ("dns-version.cluster.local", "A"),
]


@pytest.mark.parametrize("name,rtype", NODATA, ids=[f"{n} {t}" for n, t in NODATA])
def test_existing_names_without_the_type_are_nodata_with_the_soa(knot, name, rtype):
    answer = knot.dig(name, rtype)
    assert answer.status == "NOERROR"
    assert "aa" in answer.flags
    assert answer.answer == []
    assert answer.authority == [soa()]


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
@pytest.mark.parametrize("name,rtype", [("example.com", "A"), ("10.250.0.11.in-addr.arpa", "PTR"),
                                         ("1.16.18.172.in-addr.arpa", "PTR")])
def test_names_outside_the_zones_are_refused_at_once(knot, name, rtype, tcp):
    answer = knot.dig(name, rtype, tcp=tcp)
    assert answer.status == "REFUSED"
    assert "aa" not in answer.flags
    assert answer.answer == []


def test_names_are_case_insensitive(knot):
    answer = knot.dig("WEB.Default.SVC.Cluster.Local", "A")
    assert answer.status == "NOERROR"
    assert [r[3] for r in answer.answer] == ["172.18.0.20"]


def test_knotd_loaded_every_zone_without_a_semantic_warning(knot):
    status = knot.knotc("zone-status").stdout
    for origin in knot.origins:
        assert f"[{origin}.]" in status
    log = knot.log.read_text()
    assert "loaded, serial none -> 1" in log, log
    # semantic-checks: on logs what it finds ("warning: [zone.] check, node ..., missing glue record")
    assert not [line for line in log.splitlines() if " warning: " in line or " error: " in line], log


def test_kzonecheck_accepts_every_zone_file(knot):
    if shutil.which("kzonecheck") is None:
        pytest.skip("kzonecheck not installed (Debian package knot-dnssecutils)")
    for origin in knot.origins:
        proc = subprocess.run(["kzonecheck", "-o", origin, zone_file(origin, str(knot.etc))],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zone_reload_serves_the_rewritten_files(knot):
    """Runs last in this module: it changes the zones (the Service moves to another ClusterIP)."""
    assert [r[3] for r in knot.dig("web.default.svc.cluster.local").answer] == ["172.18.0.20"]
    write_zones(knot.etc, 2, web_ip="172.18.1.30")
    knot.knotc("-b", "zone-reload")
    assert [r[3] for r in knot.dig("web.default.svc.cluster.local").answer] == ["172.18.1.30"]
    assert knot.dig("20.0.18.172.in-addr.arpa", "PTR").status == "NXDOMAIN"
    assert knot.dig("30.1.18.172.in-addr.arpa", "PTR").answer == [
        ("30.1.18.172.in-addr.arpa.", 30, "PTR", "web.default.svc.cluster.local.")]
    assert knot.dig(DOMAIN, "SOA").answer[0][3].split()[2] == "2"
    # Knot loads the whole file whatever the serial: a rewrite with the same serial is served too
    write_zones(knot.etc, 2, web_ip="172.18.2.40")
    knot.knotc("-b", "zone-reload")
    assert [r[3] for r in knot.dig("web.default.svc.cluster.local", tcp=True).answer] == ["172.18.2.40"]
