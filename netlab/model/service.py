"""Services and Deployments as the lab file declares them (v1 Service, apps/v1 Deployment)."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import IPv4Address
from typing import Mapping

from .lab import Protocol, frozen_map

DEFAULT_AFFINITY_TIMEOUT = 10800   # v1.DefaultClientIPServiceAffinitySeconds


class ServiceType(StrEnum):
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    EXTERNAL_NAME = "ExternalName"


class TrafficPolicy(StrEnum):
    CLUSTER = "Cluster"
    LOCAL = "Local"


@dataclass(frozen=True)
class ServicePort:
    """One of a Service's spec.ports: port, protocol, name, targetPort and nodePort."""

    port: int
    protocol: Protocol = Protocol.TCP
    name: str = ""
    target_port: int | str | None = None   # None: the same as port; str: a container port's name
    node_port: int | None = None


@dataclass(frozen=True)
class Service:
    """v1 Service: its type, selector, ports, pinned ClusterIP, session affinity, traffic policies
    and ExternalName."""

    name: str
    namespace: str
    type: ServiceType = ServiceType.CLUSTER_IP
    selector: Mapping[str, str] | None = None   # None: no selector (endpoints are not managed)
    ports: tuple[ServicePort, ...] = ()
    cluster_ip: IPv4Address | None = None        # pinned spec.clusterIP
    headless: bool = False                       # spec.clusterIP: None
    session_affinity: bool = False               # ClientIP
    affinity_timeout: int = DEFAULT_AFFINITY_TIMEOUT
    internal_policy: TrafficPolicy = TrafficPolicy.CLUSTER
    external_policy: TrafficPolicy = TrafficPolicy.CLUSTER
    external_name: str | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def proxied(self) -> bool:
        """kube-proxy writes rules for it: it has a ClusterIP (not headless, not ExternalName)."""
        return self.type is not ServiceType.EXTERNAL_NAME and not self.headless


@dataclass(frozen=True)
class Deployment:
    """apps/v1 Deployment: `replicas` pods made from `template` (a Pod whose name is the prefix)."""

    name: str
    namespace: str
    replicas: int
    selector: Mapping[str, str] = field(default_factory=frozen_map)
    template_hash: str = ""   # pod-template-hash of the template
    node_name: str | None = None
    node_selector: Mapping[str, str] = field(default_factory=frozen_map)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"
