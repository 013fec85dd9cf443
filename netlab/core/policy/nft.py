"""NetworkPolicy → one nftables script per node namespace, applied with `nft -f -`.

Every pod packet of a node crosses the node namespace's inet forward hook: same-node
traffic is bridged on cni0 with bridge-nf-call-iptables=1, cross-node traffic is routed.
So one `table inet netlab_policy` per node enforces egress for packets whose saddr is a
local pod and ingress for packets whose daddr is a local pod; each end is judged on its
own node, never twice.

Layout: `ip saddr vmap @egress_isolated` and `ip daddr vmap @ingress_isolated` jump to
per-pod chains; a chain is named by the hash of its rules, so pods selected by the same
policies share it and the rule count follows the policies, not the pods. Peer pod sets
are named sets shared the same way. Egress chains end allowed traffic with `return`
(the ingress check must still run); ingress chains `accept`; both end with `drop`, which
first logs the packet to NFLOG group 100, as kube-router's policy chains do before their
DROP: nothing is sent while no one listens, and `netlab probe` listens to tell a packet
the policy dropped from one lost on the way (kernel/droplog.py).

The script starts with `add table` + `delete table` so applying it replaces the old
table in one transaction. With no isolated pod on the node the script only removes the
table.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from ipaddress import IPv4Address, collapse_addresses
from itertools import product
from typing import Mapping

from ...model.lab import LabFile, Pod, Protocol
from ...model.policy import NetworkPolicy, PolicyPort, PolicyType, Rule
from .select import isolating_policies, peer_selects_pod, rule_peer_pods

TABLE = "inet netlab_policy"
DIGEST_CHARS = 12
MAX_COMMENT = 127
DROP_LOG_GROUP = 100   # NFLOG group of the drops (kube-router's); kernel/droplog.py reads it


@dataclass
class _Compiled:
    """The table being built for one node: named pod-IP sets and chains, by content."""

    sets: dict[tuple[IPv4Address, ...], str] = field(default_factory=dict)
    chains: dict[str, list[str]] = field(default_factory=dict)
    egress: dict[IPv4Address, str] = field(default_factory=dict)
    ingress: dict[IPv4Address, str] = field(default_factory=dict)

    def pod_set(self, ips: set[IPv4Address]) -> str:
        members = tuple(sorted(ips))
        if members not in self.sets:
            self.sets[members] = "pods-" + _digest(" ".join(str(ip) for ip in members))
        return self.sets[members]

    def chain(self, prefix: str, rules: list[str]) -> str:
        name = f"{prefix}-{_digest(chr(10).join(rules))}"
        self.chains[name] = rules
        return name


def node_ruleset(lab: LabFile, pod_ips: Mapping[str, IPv4Address], node: str) -> str:
    """The whole `nft -f -` script for node `node`'s namespace."""
    out = _Compiled()
    for pod in lab.pods:
        if pod.node != node or pod.key not in pod_ips:
            continue
        for direction, chains, prefix in ((PolicyType.EGRESS, out.egress, "egr"),
                                          (PolicyType.INGRESS, out.ingress, "ing")):
            policies = isolating_policies(lab, pod, direction)
            if policies:
                rules = _chain_rules(lab, pod_ips, pod, policies, direction, out)
                chains[pod_ips[pod.key]] = out.chain(prefix, rules)
    return _render(out, lab.lab.name, node)


def _chain_rules(lab: LabFile, pod_ips: Mapping[str, IPv4Address], pod: Pod,
                 policies: list[NetworkPolicy], direction: PolicyType, out: _Compiled) -> list[str]:
    ingress = direction is PolicyType.INGRESS
    verdict = "accept" if ingress else "return"
    rules: list[str] = []
    for policy in policies:
        for i, rule in enumerate(policy.rules(direction)):
            note = _comment(f"{policy.key} {direction.value.lower()}[{i}]")
            if ingress:
                matches = _matches(_peer_terms(lab, pod_ips, policy, rule, "saddr", out), _port_terms(rule.ports, pod))
            else:
                matches = _matches(_peer_terms(lab, pod_ips, policy, rule, "daddr", out), _port_terms(rule.ports, None))
                matches += _egress_named_ports(lab, pod_ips, policy, rule)
            for match in matches:
                line = f"{match} {verdict} {note}".strip()
                if line not in rules:
                    rules.append(line)
    # the pod is not named here: its chain must stay shareable with pods of the same policies
    word = direction.value.lower()
    rules.append(f'log prefix "netlab {word} drop " group {DROP_LOG_GROUP} drop '
                 + _comment(f"no {word} rule allows this"))
    return rules


def _matches(peers: list[str], ports: list[str]) -> list[str]:
    return [" ".join(part for part in pair if part) for pair in product(peers, ports)]


def _peer_terms(lab: LabFile, pod_ips: Mapping[str, IPv4Address], policy: NetworkPolicy, rule: Rule,
                field_name: str, out: _Compiled) -> list[str]:
    """Address matches of a rule's peers; [""] when it lists none (every address)."""
    if not rule.peers:
        return [""]
    addr = f"ip {field_name}"
    terms: list[str] = []
    pods: set[IPv4Address] = set()
    for peer in rule.peers:
        if peer.ip_block is None:
            pods.update(pod_ips[p.key] for p in lab.pods
                        if p.key in pod_ips and peer_selects_pod(lab, policy, peer, p))
            continue
        term = f"{addr} {peer.ip_block.cidr}"
        if peer.ip_block.excepts:
            excepts = ", ".join(str(net) for net in collapse_addresses(peer.ip_block.excepts))
            term += f" {addr} != {{ {excepts} }}"
        terms.append(term)
    if pods:
        terms.insert(0, f"{addr} @{out.pod_set(pods)}")
    return terms


def _port_terms(ports: tuple[PolicyPort, ...], dst: Pod | None) -> list[str]:
    """Port matches per protocol; named ports resolve against `dst` (skipped without one)."""
    if not ports:
        return [""]
    whole: set[Protocol] = set()
    ranges: dict[Protocol, list[tuple[int, int]]] = {}
    for rule_port in ports:
        if rule_port.port is None:
            whole.add(rule_port.protocol)
            continue
        if isinstance(rule_port.port, str):
            number = dst.named_port(rule_port.port, rule_port.protocol) if dst is not None else None
            if number is not None:
                ranges.setdefault(rule_port.protocol, []).append((number, number))
            continue
        last = rule_port.end_port if rule_port.end_port is not None else rule_port.port
        ranges.setdefault(rule_port.protocol, []).append((rule_port.port, last))
    terms = []
    for protocol in Protocol:
        if protocol in whole:
            terms.append(f"meta l4proto {protocol.value.lower()}")
        elif protocol in ranges:
            terms.append(f"{protocol.value.lower()} dport {{ {_port_list(ranges[protocol])} }}")
    return terms


def _port_list(ranges: list[tuple[int, int]]) -> str:
    """Merged, so nft never sees overlapping intervals in one set."""
    merged: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in merged)


def _egress_named_ports(lab: LabFile, pod_ips: Mapping[str, IPv4Address], policy: NetworkPolicy,
                        rule: Rule) -> list[str]:
    """An egress rule's named ports: each destination pod resolves the name for itself."""
    named = [p for p in rule.ports if isinstance(p.port, str)]
    if not named:
        return []
    targets = list(rule_peer_pods(lab, pod_ips, policy, rule))
    terms = []
    for protocol in Protocol:
        pairs: set[tuple[IPv4Address, int]] = set()
        for rule_port in (p for p in named if p.protocol is protocol):
            for pod in targets:
                number = pod.named_port(str(rule_port.port), protocol)
                if number is not None and pod.key in pod_ips:
                    pairs.add((pod_ips[pod.key], number))
        if pairs:
            elements = ", ".join(f"{ip} . {number}" for ip, number in sorted(pairs))
            terms.append(f"ip daddr . {protocol.value.lower()} dport {{ {elements} }}")
    return terms


def _render(out: _Compiled, lab_name: str, node: str) -> str:
    lines = [f"# netlab NetworkPolicy rules for node {node} of lab {lab_name}; generated, apply with nft -f -",
             f"add table {TABLE}", f"delete table {TABLE}"]
    if not out.chains:
        return "\n".join(lines + ["# no pod on this node is isolated: the table is removed", ""])
    lines.append(f"table {TABLE} {{")
    for members, name in out.sets.items():
        lines.append(f"\tset {name} {{")
        lines.append("\t\ttype ipv4_addr")
        lines.append("\t\telements = { " + ", ".join(str(ip) for ip in members) + " }")
        lines.append("\t}")
    for name, rules in out.chains.items():
        lines.append(f"\tchain {name} {{")
        lines.extend(f"\t\t{rule}" for rule in rules)
        lines.append("\t}")
    for map_name, entries in (("egress_isolated", out.egress), ("ingress_isolated", out.ingress)):
        if entries:
            lines.append(f"\tmap {map_name} {{")
            lines.append("\t\ttype ipv4_addr : verdict")
            lines.append("\t\telements = { " + ", ".join(f"{ip} : jump {chain}"
                                                       for ip, chain in sorted(entries.items())) + " }")
            lines.append("\t}")
    lines += ["\tchain forward {",
              "\t\ttype filter hook forward priority filter; policy accept;",
              "\t\tct state established,related accept",
              "\t\tct state invalid drop"]
    if out.egress:
        lines.append("\t\tip saddr vmap @egress_isolated")
    if out.ingress:
        lines.append("\t\tip daddr vmap @ingress_isolated")
    lines += ["\t}", "}", ""]
    return "\n".join(lines)


def _comment(text: str) -> str:
    """nft keeps at most 128 bytes of a rule comment; names are DNS labels, no quotes."""
    return f'comment "{text[:MAX_COMMENT]}"'


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS]
