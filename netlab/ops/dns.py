"""Cluster DNS of a running lab: the DNS pods' Knot DNS configuration, zones, and reloads.

The DNS pods (namespace kube-system, label k8s-app=kube-dns: the coredns Deployment kubeadm
deploys) run `knotd -c /etc/knot/knot.conf`. Each gets, in its own mount namespace only,
`<labdir>/dns/etc` read-only on /etc/knot (knot.conf and the zone files, shared by the
replicas as CoreDNS's ConfigMap volume is) and `<labdir>/dns/<pod>` read-write on
/var/lib/knot (knotd's control socket and storage). The zones are written from the lab
record (its Services with their EndpointSlices' endpoints, its pods) before the DNS pods
start, and again after every `up`/`apply` has converged the Services; then each running
knotd is told to reload (`knotc -s <labdir>/dns/<pod>/knot.sock zone-reload`, through the
unix socket from the host). The host's own /etc/knot and /var/lib/knot are never written.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from ..errors import KernelFeatureMissing, NetlabError
from ..kernel import procs
from ..kernel.sandbox import Mount, missing_targets
from ..model.lab import LabFile
from ..spec.clusterdns import NAMESPACE, is_dns_pod
from . import state
from .record import LabRecord, PodRecord, ServiceRecord

if TYPE_CHECKING:
    from ..core import dnszone

SERVICE = "kube-system/kube-dns"
CONF_DIR = "/etc/knot"
RUN_DIR = "/var/lib/knot"
PACKAGE = "knot"
SOCKET = "knot.sock"
RELOAD_TIMEOUT = 5.0    # seconds knotc waits for knotd's answer (knotc -t)
SOCKET_WAIT = 2.0       # a knotd that has just started may not have made its control socket yet
METRICS_NOTE = "9153/TCP (metrics): no server — Knot DNS has no Prometheus endpoint"


def dns_pods(pods: Iterable[PodRecord]) -> list[PodRecord]:
    return [p for p in pods if is_dns_pod(p.namespace, p.labels)]


def dns_dir(lab: str) -> Path:
    return state.lab_dir(lab) / "dns"


def conf_dir(lab: str) -> Path:
    return dns_dir(lab) / "etc"


def socket_path(lab: str, pod: str) -> Path:
    return dns_dir(lab) / pod / SOCKET


def pod_mounts(lab: str, pod: PodRecord) -> tuple[Mount, ...]:
    """The volumes of a DNS pod (none for any other pod); its own run directory is made here."""
    if not is_dns_pod(pod.namespace, pod.labels):
        return ()
    own = dns_dir(lab) / pod.name
    own.mkdir(mode=0o700, parents=True, exist_ok=True)
    return (Mount(str(conf_dir(lab)), CONF_DIR, readonly=True), Mount(str(own), RUN_DIR, readonly=False))


def check(lab: LabFile) -> None:
    """Before anything is built: a lab with DNS pods needs Knot DNS installed (knotd, knotc, and
    the mount points the package makes)."""
    if not any(is_dns_pod(p.namespace, p.labels) for p in lab.pods):
        return
    needs = [f"`{tool}`" for tool in ("knotd", "knotc") if shutil.which(tool) is None]
    needs += missing_targets((Mount("", CONF_DIR), Mount("", RUN_DIR)))
    if needs:
        raise KernelFeatureMissing(
            f"cluster DNS runs Knot DNS in the kube-system/coredns pods and needs {', '.join(needs)}, which "
            f"this machine lacks; nothing was created — install it: apt-get install {PACKAGE} "
            "(or leave cluster DNS out: spec.dns.enabled: false)")


@dataclass(frozen=True)
class Written:
    """What write() did: the zones written, the SOA serial, and whether the zones or knot.conf changed."""

    zones: tuple[str, ...]
    serial: int
    changed: bool          # zone files changed (a reload is due)
    conf_changed: bool     # knot.conf changed (the zone list: a configuration reload is due)


def _ip(text: str | None) -> IPv4Address | None:
    return None if text in (None, "", "None") else IPv4Address(text)


def _target_port(port, pod: PodRecord | None) -> int | None:
    if isinstance(port.target_port, int):
        return port.target_port
    if pod is None:
        return None
    return next((p.port for p in pod.ports if p.name == port.target_port and p.protocol == port.protocol), None)


def dns_records(services: Iterable[ServiceRecord],
                pods: Iterable[PodRecord]) -> tuple[list[dnszone.DnsService], list[dnszone.DnsPod]]:
    """The records' Services and pods as the zone generator takes them. Endpoints carry no
    hostname (the EndpointSlice controller sets one only for a pod whose spec.subdomain names
    the Service, which lab files do not declare): the generator names them by their address."""
    from ..core import dnszone   # lazily, as in write()
    pods = list(pods)
    by_key = {p.key: p for p in pods}
    out = []
    for svc in services:
        ports = tuple(dnszone.DnsPort(p.name or "", p.protocol, p.port) for p in svc.ports)
        endpoints = tuple(dnszone.DnsEndpoint(IPv4Address(e.ip), None, e.ready, e.node or "")
                          for e in svc.endpoints)
        first = next((by_key.get(e.pod) for e in svc.endpoints if e.ready), None)
        endpoint_ports = tuple(dnszone.DnsPort(p.name or "", p.protocol, number) for p in svc.ports
                               if (number := _target_port(p, first)) is not None) if svc.cluster_ip == "None" else ()
        out.append(dnszone.DnsService(svc.name, svc.namespace, _ip(svc.cluster_ip), ports, endpoints,
                                      endpoint_ports, svc.external_name))
    return out, [dnszone.DnsPod(p.name, p.namespace, IPv4Address(p.ip)) for p in pods]


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def write(record: LabRecord, services: Iterable[ServiceRecord]) -> Written:
    """Write knot.conf and the zone files under <labdir>/dns/etc (each file replaced atomically;
    zones before the configuration that names them); the SOA serial goes up only when a zone changes."""
    from ..core import dnszone, knotconf   # lazily: a lab without cluster DNS does not load them (start-up time)
    folder = conf_dir(record.name)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    dns_services, dns_pods_ = dns_records(services, record.pods)
    net = record.networking

    def generate(serial: int) -> dnszone.Zones:
        return dnszone.zones(net.dns_domain, IPv4Network(net.pod_subnet), IPv4Network(net.service_subnet),
                             dns_services, dns_pods_, serial)

    serial_file = dns_dir(record.name) / "serial"
    previous = int(_read(serial_file) or 0)
    zones = generate(previous)
    changed = previous == 0 or any(_read(folder / f"{origin}.zone") != text for origin, text in zones.files.items())
    serial = previous
    if changed:   # RFC 1982 serials are 32 bits; the clock's seconds keep them rising across labs
        serial = max(previous + 1, int(time.time())) % (1 << 32)
        zones = generate(serial)
        for origin, text in zones.files.items():
            _write_atomic(folder / f"{origin}.zone", text)
        _write_atomic(serial_file, f"{serial}\n")
    conf = knotconf.knot_conf(tuple(zones.files), conf_dir=CONF_DIR, run_dir=RUN_DIR)
    conf_changed = _read(folder / "knot.conf") != conf
    if conf_changed:
        _write_atomic(folder / "knot.conf", conf)
    wanted = {f"{origin}.zone" for origin in zones.files} | {"knot.conf"}
    for stale in folder.iterdir():
        if stale.name not in wanted:
            stale.unlink()
    return Written(tuple(zones.files), serial, changed, conf_changed)


def running_dns_pods(record: LabRecord) -> list[PodRecord]:
    """The DNS pods whose containers (knotd) run."""
    return [p for p in dns_pods(record.pods) if p.containers and all(procs.alive(c) for c in p.containers)]


def reload(lab: str, pods: list[str], configuration: bool = False) -> None:
    """Tell these DNS pods' knotd to load the zone files again (`configuration`: knot.conf too), all
    at once, and wait until each has (knotc -b)."""
    running: list[tuple[str, list[str], subprocess.Popen]] = []
    failures: list[str] = []
    try:
        for pod in pods:
            sock = socket_path(lab, pod)
            deadline = time.monotonic() + SOCKET_WAIT
            while not sock.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            argv = ["knotc", "-s", str(sock), "-t", str(int(RELOAD_TIMEOUT)), "-b",
                    "reload" if configuration else "zone-reload"]
            try:
                proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            except OSError as err:
                failures.append(f"DNS pod {NAMESPACE}/{pod}: `{' '.join(argv)}` failed: {err}")
                continue
            running.append((pod, argv, proc))
        for pod, argv, proc in running:
            try:
                out, err = proc.communicate(timeout=RELOAD_TIMEOUT + 5)
            except subprocess.TimeoutExpired as timeout:
                failures.append(f"DNS pod {NAMESPACE}/{pod}: `{' '.join(argv)}` failed: {timeout}")
                continue
            if proc.returncode != 0:
                failures.append(f"DNS pod {NAMESPACE}/{pod}: `{' '.join(argv)}` failed: "
                                f"{(err or out).strip()} — see `netlab logs {NAMESPACE}/{pod}`")
    finally:
        for _, _, proc in running:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if failures:
        raise NetlabError("; ".join(failures))


def prepare(record: LabRecord, services: Iterable[ServiceRecord]) -> Written | None:
    """Before the pods start: the zones a DNS pod's knotd starts with (None: the lab has no DNS pods)."""
    if not dns_pods(record.pods):
        return None
    return write(record, services)


def converge(record: LabRecord) -> Written | None:
    """After the Services converged: the zones from the record's Services, every running knotd
    reloaded when they changed. None: the lab has no DNS pods."""
    if not dns_pods(record.pods):
        return None
    written = write(record, record.services)
    if written.changed or written.conf_changed:
        reload(record.name, [pod.name for pod in running_dns_pods(record)], configuration=written.conf_changed)
    return written

