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


@pytest.mark.parametrize("spec, path, message, hint", [
    ("spec: {podSelectr: {}}", "spec.podSelectr", "unknown key 'podSelectr'", "did you mean 'podSelector'?"),
    ("spec: {ingress: [{form: []}]}", "spec.ingress[0].form", "unknown key", "did you mean 'from'?"),
    ("spec: {egress: [{from: []}]}", "spec.egress[0].from", "unknown key", "known keys: to, ports"),
    ("spec: {ingress: [{from: [{podSelector: {matchLabel: {a: b}}}]}]}",
     "spec.ingress[0].from[0].podSelector.matchLabel", "unknown key", "matchLabels"),
    ("spec: {ingress: [{from: [{}, {ipBlock: {cidr: 10.0.0.0/33}}]}]}",
     "spec.ingress[0].from[1].ipBlock.cidr", "is not a CIDR", "172.16.0.0/16"),
    ("spec: {ingress: [{from: [{ipBlock: {cidr: 10.0.0.1/8}}]}]}",
     "spec.ingress[0].from[0].ipBlock.cidr", "host bits set", "did you mean 10.0.0.0/8?"),
    ("spec: {ingress: [{from: [{ipBlock: {cidr: 'fd00::/8'}}]}]}",
     "spec.ingress[0].from[0].ipBlock.cidr", "is IPv6", "IPv4"),
    ("spec: {ingress: [{from: [{ipBlock: {}}]}]}", "spec.ingress[0].from[0].ipBlock.cidr", "is required", ""),
    ("spec: {egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8]}}]}]}",
     "spec.egress[0].to[0].ipBlock.except[0]", "not a strict subset of cidr 10.0.0.0/8", "inside 10.0.0.0/8"),
    ("spec: {egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: [11.0.0.0/16]}}]}]}",
     "spec.egress[0].to[0].ipBlock.except[0]", "not a strict subset", ""),
    ("spec: {ingress: [{from: [{}]}]}", "spec.ingress[0].from[0]",
     "a peer needs podSelector, namespaceSelector or ipBlock", "leave out the whole from/to list"),
    ("spec: {ingress: [{from: [{podSelector: {}, ipBlock: {cidr: 10.0.0.0/8}}]}]}", "spec.ingress[0].from[0]",
     "ipBlock cannot be combined", "own list entry"),
    ("spec: {ingress: [{ports: [{endPort: 90}]}]}", "spec.ingress[0].ports[0].endPort",
     "endPort without port", "add port"),
    ("spec: {ingress: [{ports: [{port: http, endPort: 90}]}]}", "spec.ingress[0].ports[0].endPort",
     "cannot extend the named port 'http'", "number"),
    ("spec: {ingress: [{ports: [{port: 90, endPort: 80}]}]}", "spec.ingress[0].ports[0].endPort",
     "endPort 80 is below port 90", "90 or more"),
    ("spec: {ingress: [{ports: [{port: 70000}]}]}", "spec.ingress[0].ports[0].port", "out of range", "65535"),
    ("spec: {ingress: [{ports: [{port: '80'}]}]}", "spec.ingress[0].ports[0].port", "quoted number",
     "without quotes"),
    ("spec: {ingress: [{ports: [{port: Web_Port}]}]}", "spec.ingress[0].ports[0].port",
     "not an IANA service name", "15"),
    ("spec: {ingress: [{ports: [{port: [80]}]}]}", "spec.ingress[0].ports[0].port",
     "expected a port number or name, got a list", ""),
    ("spec: {ingress: [{ports: [{protocol: ICMP}]}]}", "spec.ingress[0].ports[0].protocol",
     "unknown protocol 'ICMP'", "TCP, UDP, SCTP"),
    ("spec: {podSelector: {matchExpressions: [{key: a, operator: Is, values: [b]}]}}",
     "spec.podSelector.matchExpressions[0].operator", "unknown operator 'Is'", "In, NotIn, Exists, DoesNotExist"),
    ("spec: {podSelector: {matchExpressions: [{key: a, operator: In}]}}",
     "spec.podSelector.matchExpressions[0].values", "operator In needs values", "at least one value"),
    ("spec: {podSelector: {matchExpressions: [{key: a, operator: NotIn, values: []}]}}",
     "spec.podSelector.matchExpressions[0].values", "operator NotIn needs values", ""),
    ("spec: {podSelector: {matchExpressions: [{key: a, operator: Exists, values: [b]}]}}",
     "spec.podSelector.matchExpressions[0].values", "operator Exists takes no values", "remove values"),
    ("spec: {podSelector: {matchExpressions: [{key: a, operator: DoesNotExist, values: [b]}]}}",
     "spec.podSelector.matchExpressions[0].values", "operator DoesNotExist takes no values", ""),
    ("spec: {podSelector: {matchExpressions: [{operator: Exists}]}}",
     "spec.podSelector.matchExpressions[0].key", "is required", ""),
    ("spec: {podSelector: {matchExpressions: [{key: 'a b', operator: Exists}]}}",
     "spec.podSelector.matchExpressions[0].key", "not a valid label key", ""),
    ("spec: {podSelector: {matchExpressions: [{key: a, operator: In, values: ['no way']}]}}",
     "spec.podSelector.matchExpressions[0].values[0]", "not a valid label value", ""),
    ("spec: {ingress: [{from: [{namespaceSelector: {matchLabels: {team: 'a b'}}}]}]}",
     "spec.ingress[0].from[0].namespaceSelector.matchLabels.team", "not a valid label value", ""),
    ("spec: {policyTypes: [Ingres]}", "spec.policyTypes[0]", "unknown policy type 'Ingres'", "Ingress, Egress"),
    ("spec: {policyTypes: [Egress, Egress]}", "spec.policyTypes[1]", "listed twice", "once"),
    ("spec: {policyTypes: Egress}", "spec.policyTypes", "expected a list, got a string", ""),
    ("spec: {ingress: {from: []}}", "spec.ingress", "expected a list, got a mapping", ""),
    ("spec: {ingress: [{from: [{podSelector: [a]}]}]}", "spec.ingress[0].from[0].podSelector",
     "expected a mapping, got a list", ""),
    ("spec: {}\nstatus: {}", "status", "unknown key 'status'", ""),
])
def test_bad_field_is_reported_at_its_path(spec: str, path: str, message: str, hint: str) -> None:
    problems = problems_of(spec)
    shown = f"NetworkPolicy(x/p).{path}"
    matching = [p for p in problems if p.path == shown]
    assert matching, f"no problem at {shown}: {[str(p) for p in problems]}"
    assert message in matching[0].message
    assert hint in matching[0].hint
    assert matching[0].file == "f.yaml" and matching[0].line is not None


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


@pytest.mark.parametrize("meta, path, message", [
    ("{namespace: x}", "metadata.name", "is required"),
    ("{name: Bad_Name}", "metadata.name", "not a DNS-1123 label"),
    ("{name: p, namespace: X}", "metadata.namespace", "not a DNS-1123 label"),
    ("{name: p, nmespace: x}", "metadata.nmespace", "unknown key"),
])
def test_bad_metadata(meta: str, path: str, message: str) -> None:
    problems = problems_of("spec: {}", meta=meta)
    assert any(p.path.endswith(path) and message in p.message for p in problems), [str(p) for p in problems]


def test_label_names_the_policy() -> None:
    problems = problems_of("spec: {policyTypes: [x]}", meta="{name: web, namespace: shop}")
    assert problems[0].path == "NetworkPolicy(shop/web).spec.policyTypes[0]"


def test_wrong_api_version() -> None:
    with pytest.raises(InputError) as err:
        load_text(LAB + "apiVersion: v1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: {}\n", "f.yaml")
    assert any("apiVersion" in p.path and "networking.k8s.io/v1" in p.hint for p in err.value.problems)
