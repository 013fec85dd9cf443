"""The oracle: what Kubernetes NetworkPolicy semantics say about one packet's first leg.

Traffic src→dst is allowed iff src may send it (src not isolated for egress, or some
egress rule of a policy selecting src allows dst) and dst may receive it (dst not
isolated for ingress, or some ingress rule of a policy selecting dst allows src).
Policies are a union: no policy denies. Replies are not judged here; conntrack lets
them through.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Mapping

from ...model.lab import LabFile, Pod, Protocol
from ...model.policy import PolicyType
from .select import isolating_policies, rule_allows


@dataclass(frozen=True)
class Endpoint:
    """One end of a connection: a pod (with its IP when allocated) or a bare address."""

    pod: Pod | None
    ip: IPv4Address | None

    def __str__(self) -> str:
        if self.pod is None:
            return str(self.ip)
        return f"{self.pod.key} ({self.ip})" if self.ip is not None else self.pod.key


@dataclass(frozen=True)
class Verdict:
    """What the policies say about one connection: allowed (egress and ingress both), each side, and why."""

    allowed: bool
    egress_allowed: bool
    ingress_allowed: bool
    reasons: tuple[str, ...]


def endpoint(lab: LabFile, pod_ips: Mapping[str, IPv4Address], target: Pod | IPv4Address) -> Endpoint:
    """A bare address that belongs to a pod is that pod: policies select by pod, not by IP."""
    if isinstance(target, Pod):
        return Endpoint(target, pod_ips.get(target.key))
    for pod in lab.pods:
        if pod_ips.get(pod.key) == target:
            return Endpoint(pod, target)
    return Endpoint(None, target)


def verdict(lab: LabFile, pod_ips: Mapping[str, IPv4Address], src: Pod | IPv4Address,
            dst: Pod | IPv4Address, port: int, protocol: Protocol) -> Verdict:
    source, dest = endpoint(lab, pod_ips, src), endpoint(lab, pod_ips, dst)
    egress_ok, egress_why = _side(lab, PolicyType.EGRESS, source, dest, dest, port, protocol)
    ingress_ok, ingress_why = _side(lab, PolicyType.INGRESS, dest, source, dest, port, protocol)
    return Verdict(egress_ok and ingress_ok, egress_ok, ingress_ok, tuple(egress_why + ingress_why))


def _side(lab: LabFile, direction: PolicyType, subject: Endpoint, remote: Endpoint, dest: Endpoint,
          port: int, protocol: Protocol) -> tuple[bool, list[str]]:
    word = direction.value.lower()
    if subject.pod is None:
        return True, [f"{subject} is not a pod: no {word} policy applies to it"]
    policies = isolating_policies(lab, subject.pod, direction)
    if not policies:
        return True, [f"{subject.pod.key} is not isolated for {word}: no policy in namespace "
                      f"{subject.pod.namespace} selects it with policyType {direction.value}"]
    why = [f"{subject.pod.key} is isolated for {word} by " + ", ".join(p.key for p in policies)]
    relation = "from" if direction is PolicyType.INGRESS else "to"
    for policy in policies:
        for i, rule in enumerate(policy.rules(direction)):
            if rule_allows(lab, policy, rule, remote.pod, remote.ip, dest.pod, port, protocol):
                why.append(f"{policy.key} {word}[{i}] allows {relation} {remote} on {port}/{protocol.value}")
                return True, why
    why.append(f"no {word} rule of the policies selecting {subject.pod.key} allows "
               f"{relation} {remote} on {port}/{protocol.value}")
    return False, why


def explain(lab: LabFile, pod_ips: Mapping[str, IPv4Address], src: Pod | IPv4Address,
            dst: Pod | IPv4Address, port: int, protocol: Protocol) -> str:
    """The text of `netlab policy explain SRC DST PORT/PROTO`: the verdict, then why."""
    result = verdict(lab, pod_ips, src, dst, port, protocol)
    source, dest = endpoint(lab, pod_ips, src), endpoint(lab, pod_ips, dst)
    head = f"{source} -> {dest} {port}/{protocol.value}: {'allowed' if result.allowed else 'denied'}"
    return "\n".join([head] + [f"  - {reason}" for reason in result.reasons])


def truth_table(lab: LabFile, pod_ips: Mapping[str, IPv4Address], port: int,
                protocol: Protocol) -> dict[tuple[str, str], bool]:
    """Expected `netlab probe` result: every ordered pair of distinct pods, by pod key."""
    return {(a.key, b.key): verdict(lab, pod_ips, a, b, port, protocol).allowed
            for a in lab.pods for b in lab.pods if a.key != b.key}
