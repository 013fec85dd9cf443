"""Services of a running lab: EndpointSlices from ready pods, kube-proxy's rules in every node.

Called by `up` and `apply` after the containers run (readiness needs them). A lab with no
Service documents gets no kube-proxy table: only default/kubernetes would exist, and it has
no endpoints in a lab without an API server. kube-proxy's generators and the kernel side are
imported by the functions that use them: a lab without Services does not load them (start-up time).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.clusterip import KUBERNETES_SERVICE
from ..core.ipam import Allocation
from ..model.lab import LabFile
from ..model.service import ServiceType
from .record import EndpointRecord, LabRecord, ServicePortRecord, ServiceRecord
from .. import names

if TYPE_CHECKING:
    from ..kernel.kubeproxy import Programming


def wanted(lab: LabFile) -> bool:
    return any(svc.key != KUBERNETES_SERVICE for svc in lab.services)


def needed(lab: LabFile, record: LabRecord) -> bool:
    """Rules to write: the lab has Services, or had some whose rules must go."""
    return wanted(lab) or bool(record.services)


def check_tools(lab: LabFile) -> None:
    if wanted(lab):
        from ..kernel import kubeproxy as proxy_kernel
        proxy_kernel.check_tools(lab.lab.name, lab.lab.kube_proxy_mode)


def rulesets(lab: LabFile, alloc: Allocation, ready: dict[str, bool]) -> dict[str, str]:
    """node namespace → its kube-proxy script (an `nft -f` script, or an `iptables-restore` input)."""
    from ..core import endpoints
    if lab.lab.kube_proxy_mode == "iptables":
        from ..core.kubeproxy_iptables import ruleset as generate
    else:
        from ..core.kubeproxy import ruleset as generate
    return {names.node_netns(lab.lab.name, node): generate(proxy)
            for node, proxy in endpoints.node_proxies(lab, alloc, ready).items()}


def describe(lab: LabFile, alloc: Allocation, ready: dict[str, bool]) -> tuple[ServiceRecord, ...]:
    """The record's Services (`services` of status --json): type, ClusterIP, ports, EndpointSlice endpoints."""
    from ..core import endpoints
    svc_alloc = endpoints.services(lab)
    out = []
    for svc in lab.services:
        ports, eps = [], {}
        for i, port in enumerate(svc.ports):
            node_port = svc_alloc.node_ports.get((svc.key, i)) if svc.type is ServiceType.NODE_PORT else None
            target = port.port if port.target_port is None else port.target_port
            ports.append(ServicePortRecord(port.name or None, port.port, target, port.protocol.value, node_port))
            for ep in endpoints.slice_endpoints(svc, port, lab, alloc.pod_ips, ready):
                eps.setdefault(ep.pod.key, EndpointRecord(ep.pod.key, str(ep.ip), ep.ready, ep.pod.node))
        cluster_ip = ("None" if svc.headless else str(svc_alloc.cluster_ips[svc.key])) \
            if svc.type is not ServiceType.EXTERNAL_NAME else None
        note = None
        if svc.selector is None and svc.type is not ServiceType.EXTERNAL_NAME:
            note = "no selector: no managed endpoints (the lab runs no API server)" \
                if svc.key == KUBERNETES_SERVICE else "no selector: no managed endpoints"
        out.append(ServiceRecord(svc.name, svc.namespace, svc.type.value, cluster_ip, tuple(ports),
                                 tuple(eps.values()), note, svc.external_name or None,
                                 svc.affinity_timeout if svc.session_affinity else None))
    return tuple(out)


def _udp_endpoints(services: tuple[ServiceRecord, ...]) -> set[tuple[str, str, int | None]]:
    found = set()
    for svc in services:
        for port in svc.ports:
            if port.protocol != "UDP" or not svc.cluster_ip or svc.cluster_ip == "None":
                continue
            for ep in svc.endpoints:
                if ep.ready:
                    found.add((svc.cluster_ip, ep.ip, port.node_port))
    return found


def start(lab: LabFile, alloc: Allocation, record: LabRecord, expected: dict[str, bool]) -> Programming | None:
    """While the pods start: every node's kube-proxy table as it will be once the `expected` pods are
    ready, programmed in the background (kube-proxy, too, programs a Service before its endpoints
    are ready). `converge` finishes it and programs again only the nodes whose rules turn out
    different. None: nothing to program, or iptables mode (its two steps stay in `converge`)."""
    if not needed(lab, record) or lab.lab.kube_proxy_mode == "iptables":
        return None
    from ..kernel import kubeproxy as proxy_kernel
    return proxy_kernel.Programming(rulesets(lab, alloc, expected))


def converge(lab: LabFile, alloc: Allocation, record: LabRecord,
             new_nodes: frozenset[str] = frozenset(),
             early: Programming | None = None) -> tuple[ServiceRecord, ...] | None:
    """Rewrite every node's kube-proxy table; the record's new Services (None: nothing to do).
    `new_nodes`: node namespaces made in this run, which hold no iptables mode's rules to clear;
    `early`: what `start` began (finished here; only the nodes whose rules differ are written again)."""
    if not needed(lab, record):
        return None
    from ..kernel import kubeproxy as proxy_kernel
    ready = proxy_kernel.readiness(record.pods, responder=record.responder)
    scripts = rulesets(lab, alloc, ready)
    nodes = list(scripts)
    if lab.lab.kube_proxy_mode == "iptables":
        proxy_kernel.program_iptables(scripts)
    else:
        if early is not None:
            early.finish()
            scripts = {name: script for name, script in scripts.items() if early.scripts.get(name) != script}
        proxy_kernel.program(scripts)
        proxy_kernel.clear_iptables([name for name in nodes if name not in new_nodes])
    described = describe(lab, alloc, ready) if wanted(lab) else ()
    stale = _udp_endpoints(record.services) - _udp_endpoints(described)
    if stale:
        proxy_kernel.flush_udp(nodes, sorted(stale, key=str))
    return described
