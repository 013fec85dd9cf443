"""The per-node nftables script: its shape and its size with many pods (nft itself: integration tier)."""
from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from netlab.core import ipam
from netlab.spec.loader import load_text
from netlab.model.lab import LabFile
from netlab.core.policy.nft import node_ruleset
from tests.policy_cases.cases import CASES, base_lab

POLICY = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
NODES = ("node-1", "node-2")
LABS = {case.yaml: case.name.split("/")[0] for case in CASES}  # one entry per distinct lab


def lab_with(policies: str) -> tuple[LabFile, dict[str, IPv4Address]]:
    lab = load_text(base_lab() + ("---\n" + policies if policies else ""), "t.yaml")
    return lab, ipam.allocate(lab).pod_ips


def chain(script: str, name_prefix: str) -> list[str]:
    """The rules of the first chain whose name starts with `name_prefix`."""
    lines = script.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(f"chain {name_prefix}"))
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == "}")
    return [line.strip() for line in lines[start + 1:end]]


def test_no_isolated_pod_removes_the_table() -> None:
    lab, ips = lab_with("")
    script = node_ruleset(lab, ips, "node-1")
    body = [line for line in script.splitlines() if not line.startswith("#")]
    assert body == ["add table inet netlab_policy", "delete table inet netlab_policy"]


def test_only_the_nodes_own_pods_are_policed() -> None:
    lab, ips = lab_with(POLICY + "metadata: {name: deny, namespace: x}\nspec: {podSelector: {matchLabels: "
                        "{pod: b}}}\n")
    assert "map ingress_isolated" not in node_ruleset(lab, ips, "node-1")  # x/b lives on node-2
    script = node_ruleset(lab, ips, "node-2")
    assert "elements = { 172.16.2.11 : jump ing-" in script
    assert "egress_isolated" not in script


def test_layout_of_a_deny_all() -> None:
    lab, ips = lab_with(POLICY + "metadata: {name: deny-all, namespace: x}\nspec: {podSelector: {}, "
                        "policyTypes: [Ingress, Egress]}\n")
    script = node_ruleset(lab, ips, "node-1")
    lines = [line.strip() for line in script.splitlines()]
    assert lines[1:4] == ["add table inet netlab_policy", "delete table inet netlab_policy",
                          "table inet netlab_policy {"]
    forward = chain(script, "forward")
    assert forward == ["type filter hook forward priority filter; policy accept;",
                       "ct state established,related accept", "ct state invalid drop",
                       "ip saddr vmap @egress_isolated", "ip daddr vmap @ingress_isolated"]
    # x/a and x/c are both on node-1 and share one chain per direction
    assert script.count("chain ing-") == 1 and script.count("chain egr-") == 1
    assert "172.16.1.10 : jump ing-" in script and "172.16.1.12 : jump ing-" in script
    assert chain(script, "ing-") == ['log prefix "netlab ingress drop " group 100 drop comment "no ingress rule allows this"']


def test_egress_returns_so_ingress_is_still_checked() -> None:
    lab, ips = lab_with(POLICY + """\
metadata: {name: both, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress, Egress]
  ingress: [{from: [{podSelector: {}}]}]
  egress: [{to: [{namespaceSelector: {matchLabels: {ns: y}}}]}]
""")
    script = node_ruleset(lab, ips, "node-1")
    egress, ingress = chain(script, "egr-"), chain(script, "ing-")
    assert egress[0].startswith("ip daddr @pods-") and ' return comment "x/both egress[0]"' in egress[0]
    assert ingress[0].startswith("ip saddr @pods-") and ' accept comment "x/both ingress[0]"' in ingress[0]
    y_set = next(line for line in script.splitlines() if "172.16.1.20, 172.16.1.22, 172.16.2.21" in line)
    assert y_set.strip() == "elements = { 172.16.1.20, 172.16.1.22, 172.16.2.21 }"


def test_ports_ip_blocks_and_protocols() -> None:
    lab, ips = lab_with(POLICY + """\
metadata: {name: mixed, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from: [{ipBlock: {cidr: 172.16.0.0/16, except: [172.16.2.0/24, 172.16.2.128/25]}}]
      ports: [{port: 81, endPort: 90}, {port: 80}, {port: 85}, {protocol: SCTP},
              {protocol: UDP, port: serve-81-udp}, {port: no-such-port}]
""")
    rules = chain(node_ruleset(lab, ips, "node-1"), "ing-")
    peer = "ip saddr 172.16.0.0/16 ip saddr != { 172.16.2.0/24 }"
    assert rules == [f'{peer} tcp dport {{ 80-90 }} accept comment "x/mixed ingress[0]"',
                     f'{peer} udp dport {{ 81 }} accept comment "x/mixed ingress[0]"',
                     f'{peer} meta l4proto sctp accept comment "x/mixed ingress[0]"',
                     'log prefix "netlab ingress drop " group 100 drop comment "no ingress rule allows this"']


def test_named_ports_resolve_per_destination() -> None:
    extra = """\
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: x, labels: {pod: a}}
spec: {nodeName: node-1, containers: [{name: w, ports: [{containerPort: 8080, name: serve-80-tcp}]}]}
---
"""
    lab, ips = lab_with(extra + POLICY + """\
metadata: {name: named, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress, Egress]
  ingress: [{ports: [{port: serve-80-tcp}]}]
  egress: [{to: [{podSelector: {matchLabels: {pod: a}}}], ports: [{port: serve-80-tcp}]}]
""")
    script = node_ruleset(lab, ips, "node-1")
    # x/a serves it on 80, x/web on 8080: two ingress chains, one shared egress chain
    assert script.count("chain ing-") == 2 and script.count("chain egr-") == 1
    assert ips["x/web"] == IPv4Address("172.16.1.2")  # the first free address after the pinned ones
    assert "ip daddr . tcp dport { 172.16.1.2 . 8080, 172.16.1.10 . 80 } return" in script
    assert "tcp dport { 8080 } accept" in script and "tcp dport { 80 } accept" in script


def test_rule_count_stays_flat_with_hundreds_of_pods() -> None:
    text = """\
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
networking: {podSubnet: 172.16.0.0/16}
---
apiVersion: netlab/v1alpha1
kind: Lab
metadata: {name: big}
spec:
  scale: {nodes: 3, podsPerNode: 200, ports: [80]}
---
""" + POLICY + """\
metadata: {name: same-node-only}
spec:
  podSelector: {matchLabels: {app: scale}}
  policyTypes: [Ingress, Egress]
  ingress: [{from: [{podSelector: {matchLabels: {node: node-1}}}], ports: [{port: 80}]}]
  egress: [{to: [{podSelector: {}}]}, {ports: [{port: 53, protocol: UDP}]}]
"""
    lab = load_text(text, "big.yaml")
    ips = ipam.allocate(lab).pod_ips
    script = node_ruleset(lab, ips, "node-1")
    rules = [line for line in script.splitlines() if line.startswith("\t\t") and "elements" not in line
             and not line.strip().startswith(("type ", "}"))]
    assert len(rules) < 15, rules
    assert script.count("chain ") == 3 and script.count("set pods-") == 2


def test_a_partial_converge_names_the_nodes_behind_and_what_they_hold() -> None:
    from netlab.kernel.policy import Enforced, failure
    result = Enforced(("x/new",), "lab", 3, {"node-1": "n1-new", "node-2": "n2-old", "node-3": "n3-new"},
                      {"node-2": "nft exited 1: Operation not permitted"})
    assert not result.complete and Enforced(("x/new",), "lab", 1, {"node-1": "a"}).complete
    text = failure(result, ("x/old",), "lab.yaml", "apply")
    assert text.splitlines() == [
        "NetworkPolicy rules not applied on 1 of 3 nodes (nft replaces a node's rules in one transaction, so "
        "each of these still holds its previous rules: the rules of NetworkPolicies x/old, as before this run):",
        "  node node-2: nft exited 1: Operation not permitted",
        "the new rules are in force on nodes node-1, node-3",
        "fix the cause and run `netlab apply lab.yaml` again: it retries only the nodes that are behind (if nft "
        "rejected the rules themselves, that is a netlab bug: please report it with the lab file)"]
    assert "no NetworkPolicy rules" in failure(result, (), "lab.yaml", "up")
