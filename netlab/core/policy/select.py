"""Which pods a policy, a peer or a port selects: the one place both the oracle and the
nftables compiler take Kubernetes' selection rules from, so they cannot drift apart."""
from __future__ import annotations

from ipaddress import IPv4Address
from typing import Iterator, Mapping

from ...model.lab import NAMESPACE_NAME_LABEL, LabFile, Pod, Protocol
from ...model.policy import NetworkPolicy, Peer, PolicyPort, PolicyType, Rule


def namespace_labels(lab: LabFile, name: str) -> Mapping[str, str]:
    ns = lab.namespace(name)
    # a namespace only a policy names has no document: it still carries its name label
    return ns.labels if ns is not None else {NAMESPACE_NAME_LABEL: name}


def selects(policy: NetworkPolicy, pod: Pod) -> bool:
    return pod.namespace == policy.namespace and policy.pod_selector.matches(pod.labels)


def isolating_policies(lab: LabFile, pod: Pod, direction: PolicyType) -> list[NetworkPolicy]:
    """The policies that isolate `pod` for `direction`; empty: the pod is not isolated."""
    return [p for p in lab.policies if direction in p.policy_types and selects(p, pod)]


def peer_selects_pod(lab: LabFile, policy: NetworkPolicy, peer: Peer, pod: Pod) -> bool:
    """A selector peer matching `pod`; ipBlock peers are matched on addresses instead."""
    if peer.ip_block is not None:
        return False
    if peer.namespace_selector is None:
        if pod.namespace != policy.namespace:
            return False
    elif not peer.namespace_selector.matches(namespace_labels(lab, pod.namespace)):
        return False
    return peer.pod_selector is None or peer.pod_selector.matches(pod.labels)


def peer_matches(lab: LabFile, policy: NetworkPolicy, peer: Peer, pod: Pod | None, ip: IPv4Address | None) -> bool:
    """Does `peer` match the remote end (a pod with its IP, or a bare IP)?

    ipBlock is matched on the address, pod IPs included: Kubernetes meant it for
    cluster-external addresses but leaves pod IPs undefined, and the common
    implementations (Calico, Cilium, kube-router) match the address as given.
    """
    if peer.ip_block is not None:
        return ip is not None and peer.ip_block.contains(ip)
    return pod is not None and peer_selects_pod(lab, policy, peer, pod)


def port_matches(rule_port: PolicyPort, dst: Pod | None, port: int, protocol: Protocol) -> bool:
    """Named ports resolve against the destination pod, for ingress and egress rules alike."""
    if rule_port.protocol is not protocol:
        return False
    if rule_port.port is None:
        return True
    if isinstance(rule_port.port, str):
        return dst is not None and dst.named_port(rule_port.port, protocol) == port
    last = rule_port.end_port if rule_port.end_port is not None else rule_port.port
    return rule_port.port <= port <= last


def rule_allows(lab: LabFile, policy: NetworkPolicy, rule: Rule, peer_pod: Pod | None,
                peer_ip: IPv4Address | None, dst: Pod | None, port: int, protocol: Protocol) -> bool:
    peer_ok = not rule.peers or any(peer_matches(lab, policy, p, peer_pod, peer_ip) for p in rule.peers)
    port_ok = not rule.ports or any(port_matches(p, dst, port, protocol) for p in rule.ports)
    return peer_ok and port_ok


def rule_peer_pods(lab: LabFile, pod_ips: Mapping[str, IPv4Address], policy: NetworkPolicy,
                   rule: Rule) -> Iterator[Pod]:
    """Every pod a rule's peers cover (all pods when it lists none), ipBlocks by pod IP."""
    for pod in lab.pods:
        ip = pod_ips.get(pod.key)
        if not rule.peers or any(peer_matches(lab, policy, peer, pod, ip) for peer in rule.peers):
            yield pod
