"""The oracle beyond the probe matrix: external addresses, SCTP, named ports, reasons."""
from __future__ import annotations

from ipaddress import IPv4Address

from netlab.core import ipam
from netlab.spec.loader import load_text
from netlab.model.lab import LabFile, Pod, Protocol
from netlab.core.policy.evaluate import explain, verdict
from tests.policy_cases.cases import base_lab

EXTERNAL = IPv4Address("203.0.113.7")


def lab_with(policies: str) -> tuple[LabFile, dict[str, IPv4Address]]:
    lab = load_text(base_lab() + "---\n" + policies, "t.yaml")
    return lab, ipam.allocate(lab).pod_ips


def pod(lab: LabFile, key: str) -> Pod:
    return next(p for p in lab.pods if p.key == key)


POLICY = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"


def test_reasons_name_the_isolating_policy_and_the_allowing_rule() -> None:
    lab, ips = lab_with(POLICY + """\
metadata: {name: from-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from: [{podSelector: {matchLabels: {pod: c}}}]
    - from: [{podSelector: {matchLabels: {pod: b}}}]
""")
    ok = verdict(lab, ips, pod(lab, "x/b"), pod(lab, "x/a"), 80, Protocol.TCP)
    assert ok.allowed and ok.egress_allowed and ok.ingress_allowed
    assert "x/b is not isolated for egress" in ok.reasons[0]
    assert ok.reasons[1] == "x/a is isolated for ingress by x/from-b"
    assert ok.reasons[2] == "x/from-b ingress[1] allows from x/b (172.16.2.11) on 80/TCP"
    no = verdict(lab, ips, pod(lab, "y/b"), pod(lab, "x/a"), 80, Protocol.TCP)
    assert not no.allowed and no.egress_allowed and not no.ingress_allowed
    assert no.reasons[-1] == ("no ingress rule of the policies selecting x/a allows from y/b (172.16.2.21) "
                              "on 80/TCP")


def test_explain_text() -> None:
    lab, ips = lab_with(POLICY + "metadata: {name: deny, namespace: x}\nspec: {podSelector: {}, "
                        "policyTypes: [Egress]}\n")
    text = explain(lab, ips, pod(lab, "x/a"), pod(lab, "y/b"), 80, Protocol.TCP)
    assert text.splitlines() == [
        "x/a (172.16.1.10) -> y/b (172.16.2.21) 80/TCP: denied",
        "  - x/a is isolated for egress by x/deny",
        "  - no egress rule of the policies selecting x/a allows to y/b (172.16.2.21) on 80/TCP",
        "  - y/b is not isolated for ingress: no policy in namespace y selects it with policyType Ingress",
    ]


def test_external_addresses_match_ip_blocks_only() -> None:
    lab, ips = lab_with(POLICY + """\
metadata: {name: web, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress, Egress]
  ingress:
    - from: [{namespaceSelector: {}}, {ipBlock: {cidr: 203.0.113.0/24, except: [203.0.113.128/25]}}]
  egress:
    - to: [{namespaceSelector: {}}]
""")
    a = pod(lab, "x/a")
    assert verdict(lab, ips, EXTERNAL, a, 80, Protocol.TCP).allowed
    assert not verdict(lab, ips, IPv4Address("203.0.113.200"), a, 80, Protocol.TCP).allowed
    # namespaceSelector {} is every pod, never an outside address
    assert not verdict(lab, ips, IPv4Address("198.51.100.1"), a, 80, Protocol.TCP).allowed
    assert not verdict(lab, ips, a, EXTERNAL, 443, Protocol.TCP).allowed
    first = verdict(lab, ips, EXTERNAL, pod(lab, "y/a"), 80, Protocol.TCP)
    assert first.allowed and "203.0.113.7 is not a pod" in first.reasons[0]


def test_a_pod_address_is_that_pod() -> None:
    lab, ips = lab_with(POLICY + """\
metadata: {name: from-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]
""")
    assert verdict(lab, ips, IPv4Address("172.16.2.11"), IPv4Address("172.16.1.10"), 80, Protocol.TCP).allowed
    assert not verdict(lab, ips, IPv4Address("172.16.1.12"), IPv4Address("172.16.1.10"), 80, Protocol.TCP).allowed


def test_sctp_and_protocol_only_ports() -> None:
    lab, ips = lab_with(POLICY + """\
metadata: {name: sctp, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress: [{ports: [{protocol: SCTP}, {protocol: UDP, port: 5000, endPort: 5010}]}]
""")
    a, b = pod(lab, "x/a"), pod(lab, "x/b")
    assert verdict(lab, ips, b, a, 9999, Protocol.SCTP).allowed
    assert verdict(lab, ips, b, a, 5010, Protocol.UDP).allowed
    assert not verdict(lab, ips, b, a, 5011, Protocol.UDP).allowed
    assert not verdict(lab, ips, b, a, 5005, Protocol.TCP).allowed


def test_named_ports_resolve_on_the_destination() -> None:
    # x/a's web port is 8080, y/a's is 9090: one egress rule, a different number per destination
    extra = """\
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: x, labels: {app: web}}
spec: {nodeName: node-1, containers: [{name: w, ports: [{containerPort: 8080, name: web}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: y, labels: {app: web}}
spec: {nodeName: node-2, containers: [{name: w, ports: [{containerPort: 9090, name: web}]}]}
---
"""
    lab, ips = lab_with(extra + POLICY + """\
metadata: {name: to-web, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress: [{ports: [{port: web}]}]
""")
    a = pod(lab, "x/a")
    assert verdict(lab, ips, a, pod(lab, "x/web"), 8080, Protocol.TCP).allowed
    assert not verdict(lab, ips, a, pod(lab, "x/web"), 9090, Protocol.TCP).allowed
    assert verdict(lab, ips, a, pod(lab, "y/web"), 9090, Protocol.TCP).allowed
    assert not verdict(lab, ips, a, pod(lab, "y/web"), 8080, Protocol.TCP).allowed
    assert not verdict(lab, ips, a, pod(lab, "y/b"), 8080, Protocol.TCP).allowed  # no port named web
    assert not verdict(lab, ips, a, EXTERNAL, 8080, Protocol.TCP).allowed  # a name needs a pod to resolve


def test_policies_of_other_namespaces_do_not_select() -> None:
    lab, ips = lab_with(POLICY + "metadata: {name: deny, namespace: y}\nspec: {podSelector: {matchLabels: "
                        "{pod: a}}}\n")
    assert verdict(lab, ips, pod(lab, "y/b"), pod(lab, "x/a"), 80, Protocol.TCP).allowed
    assert not verdict(lab, ips, pod(lab, "x/b"), pod(lab, "y/a"), 80, Protocol.TCP).allowed
