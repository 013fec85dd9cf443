"""EndpointSlices and kube-proxy's view of them, pure: Services + pods + readiness → per-node rules.

As the EndpointSlice controller: a Service with a selector gets every pod of its namespace
whose labels match; each Service port's targetPort resolves per pod (a name is looked up in
that pod's container ports with the Service port's protocol; a pod without it is no
endpoint for that port). Not-ready pods are listed with ready=false and kube-proxy skips
them. A Service without a selector (default/kubernetes here) has no managed endpoints.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Mapping

from ..model.lab import LabFile, Pod
from ..model.service import Service, ServicePort, ServiceType, TrafficPolicy
from .clusterip import ServiceAllocation, allocate
from .ipam import Allocation
from .kubeproxy import Endpoint, NodeProxy, ServicePortRules


@dataclass(frozen=True)
class SliceEndpoint:
    """One EndpointSlice endpoint of one Service port: a selected pod, its IP, the targetPort resolved
    for it, and whether it is ready."""

    pod: Pod
    ip: IPv4Address
    port: int
    ready: bool


def selects(svc: Service, pod: Pod) -> bool:
    return (svc.selector is not None and bool(svc.selector) and pod.namespace == svc.namespace
            and all(pod.labels.get(k) == v for k, v in svc.selector.items()))


def target_port(port: ServicePort, pod: Pod) -> int | None:
    if port.target_port is None:
        return port.port
    if isinstance(port.target_port, int):
        return port.target_port
    return pod.named_port(port.target_port, port.protocol)


def slice_endpoints(svc: Service, port: ServicePort, lab: LabFile, pod_ips: Mapping[str, IPv4Address],
                    ready: Mapping[str, bool]) -> list[SliceEndpoint]:
    out = []
    for pod in lab.pods:
        if not selects(svc, pod):
            continue
        number = target_port(port, pod)
        if number is not None:
            out.append(SliceEndpoint(pod, pod_ips[pod.key], number, ready.get(pod.key, False)))
    return out


def services(lab: LabFile) -> ServiceAllocation:
    return allocate(lab.services, lab.networking.service_subnet)


def port_rules(lab: LabFile, alloc: Allocation, svc_alloc: ServiceAllocation,
               ready: Mapping[str, bool]) -> list[ServicePortRules]:
    """Every proxied Service port with its ready endpoints, as kube-proxy receives them."""
    rules = []
    for svc in lab.services:
        if not svc.proxied:
            continue
        for i, port in enumerate(svc.ports):
            eps = tuple(Endpoint(e.ip, e.port, e.pod.node, e.pod.key)
                        for e in slice_endpoints(svc, port, lab, alloc.pod_ips, ready) if e.ready)
            rules.append(ServicePortRules(
                svc.namespace, svc.name, port.name, port.protocol.value.lower(), svc_alloc.cluster_ips[svc.key],
                port.port, eps, svc_alloc.node_ports.get((svc.key, i)) if svc.type is ServiceType.NODE_PORT else None,
                svc.affinity_timeout if svc.session_affinity else None,
                svc.internal_policy is TrafficPolicy.LOCAL, svc.external_policy is TrafficPolicy.LOCAL))
    return rules


def node_proxies(lab: LabFile, alloc: Allocation, ready: Mapping[str, bool]) -> dict[str, NodeProxy]:
    """node name → what its kube-proxy programs (NodePorts on the node's underlay IP)."""
    rules = tuple(port_rules(lab, alloc, services(lab), ready))
    return {name: NodeProxy(name, lab.networking.pod_subnet, lab.networking.service_subnet, (node.underlay_ip,), rules)
            for name, node in alloc.nodes.items()}
