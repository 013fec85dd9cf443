"""networking.k8s.io/v1 NetworkPolicy as frozen values; defaulting is done here, once."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import IPv4Address, IPv4Network
from typing import Mapping

from .lab import Protocol, frozen_map


class Operator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class PolicyType(StrEnum):
    INGRESS = "Ingress"
    EGRESS = "Egress"


@dataclass(frozen=True)
class LabelRequirement:
    """One matchExpressions entry; values are empty for Exists/DoesNotExist."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator is Operator.IN:
            return self.key in labels and labels[self.key] in self.values
        if self.operator is Operator.NOT_IN:
            # as labels.Selector: an absent key satisfies NotIn
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator is Operator.EXISTS:
            return self.key in labels
        return self.key not in labels

    def __str__(self) -> str:
        if self.operator is Operator.EXISTS:
            return self.key
        if self.operator is Operator.DOES_NOT_EXIST:
            return f"!{self.key}"
        word = "in" if self.operator is Operator.IN else "notin"
        return f"{self.key} {word} ({','.join(self.values)})"


@dataclass(frozen=True)
class LabelSelector:
    """metav1.LabelSelector: all terms ANDed; the empty selector matches everything."""

    match_labels: Mapping[str, str] = field(default_factory=frozen_map)
    match_expressions: tuple[LabelRequirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return (all(labels.get(key) == value for key, value in self.match_labels.items())
                and all(req.matches(labels) for req in self.match_expressions))

    @property
    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions

    def __str__(self) -> str:
        """kubectl's selector syntax, e.g. `pod=a,tier in (x,y)`; `{}` for match-all."""
        terms = [f"{k}={v}" for k, v in sorted(self.match_labels.items())]
        terms += [str(req) for req in self.match_expressions]
        return ",".join(terms) if terms else "{}"


@dataclass(frozen=True)
class IPBlock:
    """A peer's ipBlock: a CIDR without its `except` ranges."""

    cidr: IPv4Network
    excepts: tuple[IPv4Network, ...] = ()

    def contains(self, ip: IPv4Address) -> bool:
        return ip in self.cidr and not any(ip in net for net in self.excepts)

    def __str__(self) -> str:
        if not self.excepts:
            return str(self.cidr)
        return f"{self.cidr} except {', '.join(str(n) for n in self.excepts)}"


@dataclass(frozen=True)
class Peer:
    """A from/to entry. Selectors in one peer are ANDed; ipBlock stands alone.

    pod_selector only: pods of the policy's namespace. namespace_selector only: every
    pod of the matching namespaces.
    """

    pod_selector: LabelSelector | None = None
    namespace_selector: LabelSelector | None = None
    ip_block: IPBlock | None = None

    def __str__(self) -> str:
        if self.ip_block is not None:
            return f"ipBlock {self.ip_block}"
        parts = []
        if self.namespace_selector is not None:
            parts.append(f"namespaceSelector {self.namespace_selector}")
        if self.pod_selector is not None:
            parts.append(f"podSelector {self.pod_selector}")
        return " and ".join(parts)


@dataclass(frozen=True)
class PolicyPort:
    """port None = every port of the protocol; a str is a named container port."""

    protocol: Protocol = Protocol.TCP
    port: int | str | None = None
    end_port: int | None = None

    def __str__(self) -> str:
        if self.port is None:
            return f"all/{self.protocol.value}"
        if self.end_port is not None:
            return f"{self.port}-{self.end_port}/{self.protocol.value}"
        return f"{self.port}/{self.protocol.value}"


@dataclass(frozen=True)
class Rule:
    """An ingress or egress rule: empty peers = every peer, empty ports = every port."""

    peers: tuple[Peer, ...] = ()
    ports: tuple[PolicyPort, ...] = ()


@dataclass(frozen=True)
class NetworkPolicy:
    """networking.k8s.io/v1 NetworkPolicy: the pods it selects in its namespace, its rules and policyTypes."""

    name: str
    namespace: str = "default"
    pod_selector: LabelSelector = LabelSelector()
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()
    policy_types: tuple[PolicyType, ...] = (PolicyType.INGRESS,)

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def isolates_ingress(self) -> bool:
        return PolicyType.INGRESS in self.policy_types

    @property
    def isolates_egress(self) -> bool:
        return PolicyType.EGRESS in self.policy_types

    def rules(self, direction: PolicyType) -> tuple[Rule, ...]:
        return self.ingress if direction is PolicyType.INGRESS else self.egress


def default_policy_types(explicit: tuple[PolicyType, ...], egress: tuple[Rule, ...]) -> tuple[PolicyType, ...]:
    """The API server's defaulting: Ingress always, Egress when there are egress rules.

    An explicit, non-empty policyTypes is kept as given, so [Egress] with no egress
    rules denies all egress and leaves ingress alone.
    """
    if explicit:
        return tuple(t for t in PolicyType if t in explicit)
    return (PolicyType.INGRESS, PolicyType.EGRESS) if egress else (PolicyType.INGRESS,)
