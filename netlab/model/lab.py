"""The validated lab: typed, frozen values the later stages read and never change."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network
from types import MappingProxyType
from typing import Any, Mapping

from .impairment import LinkImpairment

KUBEADM_API_VERSIONS = ("kubeadm.k8s.io/v1beta4", "kubeadm.k8s.io/v1beta3")
LAB_API_VERSION = "netlab/v1alpha1"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
CALICO_IP_ANNOTATION = "cni.projectcalico.org/ipAddrs"


class Protocol(StrEnum):
    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


def frozen_map(items: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(items or {}))


@dataclass(frozen=True)
class Networking:
    """kubeadm ClusterConfiguration.networking, with kubeadm's defaults filled in."""

    pod_subnet: IPv4Network
    service_subnet: IPv4Network = IPv4Network("10.96.0.0/12")
    dns_domain: str = "cluster.local"

    @property
    def kubernetes_service_ip(self) -> IPv4Address:
        return self.service_subnet.network_address + 1

    @property
    def dns_service_ip(self) -> IPv4Address:
        return self.service_subnet.network_address + 10


@dataclass(frozen=True)
class NodeSpec:
    """One node of the Lab's spec.nodes (or made by spec.scale): its name, rack, pinned podCIDR and labels."""

    name: str
    rack: str | None = None
    pod_cidr: IPv4Network | None = None
    labels: Mapping[str, str] = field(default_factory=frozen_map)


@dataclass(frozen=True)
class LabSpec:
    """The Lab document's spec: the lab's name, backend (and its options), nodes, underlay, impairments,
    kube-proxy mode and whether cluster DNS runs."""

    name: str
    backend: str                       # a netlab.core.backends.Backend member (the registry's names)
    nodes: tuple[NodeSpec, ...]
    underlay_subnet: IPv4Network = IPv4Network("10.250.0.0/16")
    underlay_mtu: int = 1500
    options: Any = None                # the backend's own options (e.g. spec.vxlan), None if it has none
    impairments: tuple[LinkImpairment, ...] = ()
    kube_proxy_mode: str = "nftables"  # spec.kubeProxy.mode: "nftables" | "iptables"
    dns_enabled: bool = True           # spec.dns.enabled: kube-system/kube-dns and coredns injected


class DnsPolicy(StrEnum):
    """Pod spec.dnsPolicy (v1.DNSPolicy)."""

    CLUSTER_FIRST = "ClusterFirst"
    CLUSTER_FIRST_WITH_HOST_NET = "ClusterFirstWithHostNet"
    DEFAULT = "Default"
    NONE = "None"


@dataclass(frozen=True)
class DnsOption:
    """One entry of spec.dnsConfig.options: `name` or `name:value` in resolv.conf."""

    name: str
    value: str | None = None


@dataclass(frozen=True)
class DnsConfig:
    """Pod spec.dnsConfig (v1.PodDNSConfig), validated as kube-apiserver does."""

    nameservers: tuple[str, ...] = ()              # IP addresses, as written
    searches: tuple[str, ...] = ()
    options: tuple[DnsOption, ...] = ()


@dataclass(frozen=True)
class ContainerPort:
    """One of a container's ports: containerPort, protocol and an optional name."""

    container_port: int
    protocol: Protocol = Protocol.TCP
    name: str | None = None


@dataclass(frozen=True)
class Container:
    """One container of a pod: its command (empty: netlab's responder), ports, env and securityContext."""

    name: str
    command: tuple[str, ...] = ()
    ports: tuple[ContainerPort, ...] = ()
    env: tuple[tuple[str, str], ...] = ()          # the container's `env:` list, in order
    cap_add: tuple[str, ...] = ()                  # securityContext.capabilities (names without CAP_)
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False                       # securityContext.privileged: the host's powers

    @property
    def is_responder(self) -> bool:
        """No command: netlab runs its built-in responder on the declared ports."""
        return not self.command


@dataclass(frozen=True)
class Namespace:
    """A v1 Namespace: its name and labels (kubernetes.io/metadata.name among them)."""

    name: str
    labels: Mapping[str, str] = field(default_factory=frozen_map)


@dataclass(frozen=True)
class Pod:
    """A v1 Pod: its node, labels, containers, pinned IP (Calico's ipAddrs annotation) and DNS settings."""

    name: str
    namespace: str
    node: str
    labels: Mapping[str, str] = field(default_factory=frozen_map)
    containers: tuple[Container, ...] = ()
    pinned_ip: IPv4Address | None = None
    hostname: str | None = None                    # spec.hostname (else the pod's name)
    dns_policy: DnsPolicy = DnsPolicy.CLUSTER_FIRST  # spec.dnsPolicy
    dns_config: DnsConfig | None = None            # spec.dnsConfig

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def named_port(self, name: str, protocol: Protocol) -> int | None:
        for container in self.containers:
            for port in container.ports:
                if port.name == name and port.protocol == protocol:
                    return port.container_port
        return None


@dataclass(frozen=True)
class LabFile:
    """Everything one lab file declares."""

    source: str
    networking: Networking
    lab: LabSpec
    namespaces: tuple[Namespace, ...]
    pods: tuple[Pod, ...]
    policies: tuple[Any, ...] = ()  # netlab.policy.model.NetworkPolicy
    services: tuple[Any, ...] = ()  # netlab.model.service.Service

    def namespace(self, name: str) -> Namespace | None:
        for ns in self.namespaces:
            if ns.name == name:
                return ns
        return None
