"""NetworkPolicy documents: good ones become the model, each bad field one Problem at its path."""
from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from netlab.errors import InputError, Problem
from netlab.spec.loader import load_text
from netlab.model.lab import Protocol
from netlab.model.policy import IPBlock, LabelRequirement, NetworkPolicy, Operator, Peer, PolicyPort, PolicyType, Rule

LAB = """\
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
networking: {podSubnet: 172.16.0.0/16}
---
apiVersion: netlab/v1alpha1
kind: Lab
metadata: {name: pol}
spec:
  nodes: [{name: node-1}]
---
"""


def load_policy(spec: str, meta: str = "{name: p, namespace: x}") -> NetworkPolicy:
    lab = load_text(LAB + f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {meta}\n{spec}", "f.yaml")
    assert len(lab.policies) == 1
    return lab.policies[0]


def problems_of(spec: str, meta: str = "{name: p, namespace: x}") -> list[Problem]:
    with pytest.raises(InputError) as err:
        load_policy(spec, meta)
    return err.value.problems


def test_full_policy_is_parsed() -> None:
    policy = load_policy("""\
spec:
  podSelector:
    matchLabels: {app: web}
    matchExpressions: [{key: tier, operator: In, values: [a, b]}]
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {team: x}}
          podSelector: {}
        - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
      ports: [{port: 80}, {protocol: UDP, port: dns}, {protocol: SCTP, port: 1000, endPort: 1010}, {protocol: UDP}]
  egress:
    - {}
""")
    assert policy.key == "x/p"
    assert dict(policy.pod_selector.match_labels) == {"app": "web"}
    assert policy.pod_selector.match_expressions == (LabelRequirement("tier", Operator.IN, ("a", "b")),)
    rule = policy.ingress[0]
    assert rule.peers[0].namespace_selector is not None and rule.peers[0].pod_selector is not None
    assert rule.peers[0].pod_selector.is_empty
    assert rule.peers[1] == Peer(ip_block=IPBlock(IPv4Network("10.0.0.0/8"), (IPv4Network("10.1.0.0/16"),)))
    assert rule.ports == (PolicyPort(Protocol.TCP, 80), PolicyPort(Protocol.UDP, "dns"),
                          PolicyPort(Protocol.SCTP, 1000, 1010), PolicyPort(Protocol.UDP))
    assert policy.policy_types == (PolicyType.INGRESS, PolicyType.EGRESS)
    assert policy.egress == (Rule(),)


@pytest.mark.parametrize("spec, want", [
    ("spec: {podSelector: {}}", (PolicyType.INGRESS,)),
    ("spec: {podSelector: {}, egress: []}", (PolicyType.INGRESS,)),
    ("spec: {podSelector: {}, egress: [{}]}", (PolicyType.INGRESS, PolicyType.EGRESS)),
    ("spec: {podSelector: {}, policyTypes: [Egress]}", (PolicyType.EGRESS,)),
    ("spec: {podSelector: {}, policyTypes: [Egress, Ingress]}", (PolicyType.INGRESS, PolicyType.EGRESS)),
    ("spec: {podSelector: {}, policyTypes: [], egress: [{}]}", (PolicyType.INGRESS, PolicyType.EGRESS)),
])
def test_policy_types_defaulting(spec: str, want: tuple[PolicyType, ...]) -> None:
    assert load_policy(spec).policy_types == want


def test_namespace_defaults_and_pod_selector_may_be_left_out() -> None:
    policy = load_policy("spec: {}", meta="{name: p}")
    assert policy.namespace == "default" and policy.pod_selector.is_empty


# Bad fields and metadata: file pairs in tests/golden/errors/policy-*.


def test_every_problem_is_reported_in_one_run() -> None:
    problems = problems_of("""\
spec:
  policyTypes: [Sideways]
  ingress:
    - from: [{ipBlock: {cidr: 300.0.0.0/8}}]
      ports: [{port: 0}]
""")
    paths = {p.path for p in problems}
    assert {"NetworkPolicy(x/p).spec.policyTypes[0]", "NetworkPolicy(x/p).spec.ingress[0].from[0].ipBlock.cidr",
            "NetworkPolicy(x/p).spec.ingress[0].ports[0].port"} <= paths


def test_problem_points_at_the_line() -> None:
    problems = problems_of("spec:\n  ingress:\n    - ports:\n        - {port: 90, endPort: 80}\n")
    text = LAB + "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: x}\n"
    assert problems[0].line == text.count("\n") + 4


def test_label_names_the_policy() -> None:
    problems = problems_of("spec: {policyTypes: [x]}", meta="{name: web, namespace: shop}")
    assert problems[0].path == "NetworkPolicy(shop/web).spec.policyTypes[0]"


def test_wrong_api_version() -> None:
    with pytest.raises(InputError) as err:
        load_text(LAB + "apiVersion: v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: {}\n", "f.yaml")
    assert any("apiVersion" in p.path and "networking.k8s.io/v1" in p.hint for p in err.value.problems)
