"""NetworkPolicy conformance cases with their full truth tables, written out by hand.

The probe model is cyclonus's and the Kubernetes e2e netpol suite's: namespaces x, y, z
with pods a, b, c each (label pod=<name>), every pod serving 80 and 81 on TCP and UDP
(named serve-<port>-<tcp|udp>). Pods a and c sit on node-1, pods b on node-2, so every
table mixes same-node and cross-node pairs. Pod IPs are pinned, 172.16.<node>.<ns><pod>,
so ipBlock cases can name them:

    x/a 172.16.1.10  x/b 172.16.2.11  x/c 172.16.1.12
    y/a 172.16.1.20  y/b 172.16.2.21  y/c 172.16.1.22
    z/a 172.16.1.30  z/b 172.16.2.31  z/c 172.16.1.32

Namespace labels: x {ns: x, team: red}, y {ns: y, team: blue}, z {ns: z, team: blue},
plus kubernetes.io/metadata.name. Policies come from the e2e test descriptions and
ahmetb/kubernetes-network-policy-recipes. A table's rows are the client (from), its
columns the server (to): `.` connects, `X` does not, `-` is the pod itself (not probed).
Each Case is one probe run (one port and protocol); the same lab appears once per port.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from netlab.model.lab import Protocol

NAMESPACES = ("x", "y", "z")
POD_NAMES = ("a", "b", "c")
PODS = tuple(f"{ns}/{pod}" for ns in NAMESPACES for pod in POD_NAMES)
NODE_OF_POD = {"a": 1, "b": 2, "c": 1}
NS_LABELS = {"x": "{ns: x, team: red}", "y": "{ns: y, team: blue}", "z": "{ns: z, team: blue}"}


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    yaml: str
    port: int
    protocol: Protocol
    expected: Mapping[tuple[str, str], bool]  # (from, to) pod keys, every ordered pair


def pod_ip(key: str) -> str:
    ns, pod = key.split("/")
    return f"172.16.{NODE_OF_POD[pod]}.{10 * (NAMESPACES.index(ns) + 1) + POD_NAMES.index(pod)}"


def base_lab() -> str:
    docs = ["""\
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
networking: {podSubnet: 172.16.0.0/16, serviceSubnet: 172.18.0.0/20, dnsDomain: cluster.local}
---
apiVersion: netlab/v1alpha1
kind: Lab
metadata: {name: netpol}
spec:
  backend: vxlan
  dns: {enabled: false}
  nodes:
    - {name: node-1, podCIDR: 172.16.1.0/24}
    - {name: node-2, podCIDR: 172.16.2.0/24}
"""]
    for ns in NAMESPACES:
        docs.append(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}, labels: {NS_LABELS[ns]}}}\n")
    for key in PODS:
        ns, pod = key.split("/")
        docs.append(f"""\
apiVersion: v1
kind: Pod
metadata:
  name: {pod}
  namespace: {ns}
  labels: {{pod: {pod}}}
  annotations: {{cni.projectcalico.org/ipAddrs: '["{pod_ip(key)}"]'}}
spec:
  nodeName: node-{NODE_OF_POD[pod]}
  containers:
    - name: server
      ports:
        - {{containerPort: 80, protocol: TCP, name: serve-80-tcp}}
        - {{containerPort: 80, protocol: UDP, name: serve-80-udp}}
        - {{containerPort: 81, protocol: TCP, name: serve-81-tcp}}
        - {{containerPort: 81, protocol: UDP, name: serve-81-udp}}
""")
    return "---\n".join(docs)


def table(text: str) -> dict[tuple[str, str], bool]:
    """A truth table as drawn in the cases: header of servers, one row per client."""
    lines = [line.split() for line in text.strip().splitlines()]
    header, rows = lines[0], lines[1:]
    if tuple(header) != PODS or tuple(row[0] for row in rows) != PODS:
        raise ValueError(f"a table needs rows and columns {' '.join(PODS)}")
    out: dict[tuple[str, str], bool] = {}
    for row in rows:
        client, cells = row[0], row[1:]
        if len(cells) != len(PODS):
            raise ValueError(f"row {client} has {len(cells)} cells, want {len(PODS)}")
        for server, cell in zip(PODS, cells):
            if client == server:
                if cell != "-":
                    raise ValueError(f"{client}->{server} is the pod itself: write '-'")
                continue
            if cell not in ".X":
                raise ValueError(f"{client}->{server}: {cell!r} is not '.' or 'X'")
            out[(client, server)] = cell == "."
    return out


def _cases(name: str, description: str, policies: str, **tables: str) -> list[Case]:
    """One Case per probe; keywords are probe names such as tcp80 or udp81."""
    text = base_lab() + ("---\n" + policies.strip() + "\n" if policies.strip() else "")
    out = []
    for probe, drawn in tables.items():
        protocol, port = Protocol(probe[:3].upper()), int(probe[3:])
        out.append(Case(f"{name}/{probe}", description, text, port, protocol, table(drawn)))
    return out


ALL_ALLOWED = """
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  -   .   .   .   .   .   .   .   .
x/b  .   -   .   .   .   .   .   .   .
x/c  .   .   -   .   .   .   .   .   .
y/a  .   .   .   -   .   .   .   .   .
y/b  .   .   .   .   -   .   .   .   .
y/c  .   .   .   .   .   -   .   .   .
z/a  .   .   .   .   .   .   -   .   .
z/b  .   .   .   .   .   .   .   -   .
z/c  .   .   .   .   .   .   .   .   -
"""

NOTHING_INTO_X_A = """
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  -   .   .   .   .   .   .   .   .
x/b  X   -   .   .   .   .   .   .   .
x/c  X   .   -   .   .   .   .   .   .
y/a  X   .   .   -   .   .   .   .   .
y/b  X   .   .   .   -   .   .   .   .
y/c  X   .   .   .   .   -   .   .   .
z/a  X   .   .   .   .   .   -   .   .
z/b  X   .   .   .   .   .   .   -   .
z/c  X   .   .   .   .   .   .   .   -
"""

ONLY_Y_INTO_X_A = """
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  -   .   .   .   .   .   .   .   .
x/b  X   -   .   .   .   .   .   .   .
x/c  X   .   -   .   .   .   .   .   .
y/a  .   .   .   -   .   .   .   .   .
y/b  .   .   .   .   -   .   .   .   .
y/c  .   .   .   .   .   -   .   .   .
z/a  X   .   .   .   .   .   -   .   .
z/b  X   .   .   .   .   .   .   -   .
z/c  X   .   .   .   .   .   .   .   -
"""

X_A_SENDS_NOTHING = """
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  -   X   X   X   X   X   X   X   X
x/b  .   -   .   .   .   .   .   .   .
x/c  .   .   -   .   .   .   .   .   .
y/a  .   .   .   -   .   .   .   .   .
y/b  .   .   .   .   -   .   .   .   .
y/c  .   .   .   .   .   -   .   .   .
z/a  .   .   .   .   .   .   -   .   .
z/b  .   .   .   .   .   .   .   -   .
z/c  .   .   .   .   .   .   .   .   -
"""

X_SENDS_NOTHING = """
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  -   X   X   X   X   X   X   X   X
x/b  X   -   X   X   X   X   X   X   X
x/c  X   X   -   X   X   X   X   X   X
y/a  .   .   .   -   .   .   .   .   .
y/b  .   .   .   .   -   .   .   .   .
y/c  .   .   .   .   .   -   .   .   .
z/a  .   .   .   .   .   .   -   .   .
z/b  .   .   .   .   .   .   .   -   .
z/c  .   .   .   .   .   .   .   .   -
"""

POLICY_X_A_FROM_NS_Y_TCP81 = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-ns-y-on-81, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from: [{namespaceSelector: {matchLabels: {ns: y}}}]
      ports: [{port: 81, protocol: TCP}]
"""

CASES: list[Case] = [
    *_cases("no-policy", "no NetworkPolicy: every pod reaches every pod", "",
            tcp80=ALL_ALLOWED, udp80=ALL_ALLOWED),

    *_cases("deny-ingress-x", "e2e 'default-deny-ingress' / recipe 01: nothing reaches namespace x", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: x}
spec:
  podSelector: {}
""", tcp80="""
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  -   X   X   .   .   .   .   .   .
x/b  X   -   X   .   .   .   .   .   .
x/c  X   X   -   .   .   .   .   .   .
y/a  X   X   X   -   .   .   .   .   .
y/b  X   X   X   .   -   .   .   .   .
y/c  X   X   X   .   .   -   .   .   .
z/a  X   X   X   .   .   .   -   .   .
z/b  X   X   X   .   .   .   .   -   .
z/c  X   X   X   .   .   .   .   .   -
"""),

    *_cases("deny-all-x", "e2e 'default-deny-all': namespace x neither sends nor receives", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
""", tcp80="""
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  -   X   X   X   X   X   X   X   X
x/b  X   -   X   X   X   X   X   X   X
x/c  X   X   -   X   X   X   X   X   X
y/a  X   X   X   -   .   .   .   .   .
y/b  X   X   X   .   -   .   .   .   .
y/c  X   X   X   .   .   -   .   .   .
z/a  X   X   X   .   .   .   -   .   .
z/b  X   X   X   .   .   .   .   -   .
z/c  X   X   X   .   .   .   .   .   -
"""),

    *_cases("deny-egress-x", "recipe 11 'deny all egress': policyTypes [Egress] with no rules", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-egress, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Egress]
""", tcp80=X_SENDS_NOTHING, udp81=X_SENDS_NOTHING),

    *_cases("allow-same-namespace-x", "recipe 04: namespace x accepts only its own pods", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-same-namespace, namespace: x}
spec:
  podSelector: {}
  ingress:
    - from: [{podSelector: {}}]
""", tcp80="""
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  -   .   .   .   .   .   .   .   .
x/b  .   -   .   .   .   .   .   .   .
x/c  .   .   -   .   .   .   .   .   .
y/a  X   X   X   -   .   .   .   .   .
y/b  X   X   X   .   -   .   .   .   .
y/c  X   X   X   .   .   -   .   .   .
z/a  X   X   X   .   .   .   -   .   .
z/b  X   X   X   .   .   .   .   -   .
z/c  X   X   X   .   .   .   .   .   -
"""),

    *_cases("x-a-from-x-b", "e2e 'allow traffic from pods within server namespace based on PodSelector'", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: x-a-allows-x-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from: [{podSelector: {matchLabels: {pod: b}}}]
""", tcp80="""
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  -   .   .   .   .   .   .   .   .
x/b  .   -   .   .   .   .   .   .   .
x/c  X   .   -   .   .   .   .   .   .
y/a  X   .   .   -   .   .   .   .   .
y/b  X   .   .   .   -   .   .   .   .
y/c  X   .   .   .   .   -   .   .   .
z/a  X   .   .   .   .   .   -   .   .
z/b  X   .   .   .   .   .   .   -   .
z/c  X   .   .   .   .   .   .   .   -
"""),

    *_cases("x-a-from-ns-y", "e2e 'allow traffic only from a different namespace, based on NamespaceSelector'", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-client-a-via-ns-selector, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}]
""", tcp80=ONLY_Y_INTO_X_A),

    *_cases("x-a-from-ns-in-y", "e2e 'NamespaceSelector with MatchExpressions'", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-ns-y-match-selector, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from:
        - namespaceSelector:
            matchExpressions: [{key: ns, operator: In, values: [y]}]
""", tcp80=ONLY_Y_INTO_X_A),

    *_cases("x-a-from-ns-team-blue", "recipe 06: allow from namespaces with a label (y and z are team=blue)", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-team-blue, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from: [{namespaceSelector: {matchLabels: {team: blue}}}]
""", tcp80="""
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  -   .   .   .   .   .   .   .   .
x/b  X   -   .   .   .   .   .   .   .
x/c  X   .   -   .   .   .   .   .   .
y/a  .   .   .   -   .   .   .   .   .
y/b  .   .   .   .   -   .   .   .   .
y/c  .   .   .   .   .   -   .   .   .
z/a  .   .   .   .   .   .   -   .   .
z/b  .   .   .   .   .   .   .   -   .
z/c  .   .   .   .   .   .   .   .   -
"""),

    *_cases("x-a-from-pod-in-b", "e2e 'PodSelector with MatchExpressions': pod In [b], same namespace", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: x-a-allows-x-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from: [{podSelector: {matchExpressions: [{key: pod, operator: In, values: [b]}]}}]
""", tcp80="""
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  -   .   .   .   .   .   .   .   .
x/b  .   -   .   .   .   .   .   .   .
x/c  X   .   -   .   .   .   .   .   .
y/a  X   .   .   -   .   .   .   .   .
y/b  X   .   .   .   -   .   .   .   .
y/c  X   .   .   .   .   -   .   .   .
z/a  X   .   .   .   .   .   -   .   .
z/b  X   .   .   .   .   .   .   -   .
z/c  X   .   .   .   .   .   .   .   -
"""),

    *_cases("x-a-ns-and-pod", "e2e 'PodSelector and NamespaceSelector': one peer, both must match", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-ns-not-x-and-pod-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from:
        - namespaceSelector:
            matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [x]}]
          podSelector: {matchLabels: {pod: b}}
""", tcp80="""
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  -   .   .   .   .   .   .   .   .
x/b  X   -   .   .   .   .   .   .   .
x/c  X   .   -   .   .   .   .   .   .
y/a  X   .   .   -   .   .   .   .   .
y/b  .   .   .   .   -   .   .   .   .
y/c  X   .   .   .   .   -   .   .   .
z/a  X   .   .   .   .   .   -   .   .
z/b  .   .   .   .   .   .   .   -   .
z/c  X   .   .   .   .   .   .   .   -
"""),

    *_cases("x-a-ns-or-pod", "e2e 'PodSelector or NamespaceSelector': two peers, either may match", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-ns-not-x-or-pod-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from:
        - namespaceSelector:
            matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [x]}]
        - podSelector: {matchLabels: {pod: b}}
""", tcp80="""
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  -   .   .   .   .   .   .   .   .
x/b  .   -   .   .   .   .   .   .   .
x/c  X   .   -   .   .   .   .   .   .
y/a  .   .   .   -   .   .   .   .   .
y/b  .   .   .   .   -   .   .   .   .
y/c  .   .   .   .   .   -   .   .   .
z/a  .   .   .   .   .   .   -   .   .
z/b  .   .   .   .   .   .   .   -   .
z/c  .   .   .   .   .   .   .   .   -
"""),

    *_cases("x-a-pods-b-c-any-ns", "e2e 'Multiple PodSelectors and NamespaceSelectors', with namespaceSelector {}", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-pod-b-c-any-ns, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from:
        - namespaceSelector: {}
          podSelector: {matchExpressions: [{key: pod, operator: In, values: [b, c]}]}
""", tcp80="""
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  -   .   .   .   .   .   .   .   .
x/b  .   -   .   .   .   .   .   .   .
x/c  .   .   -   .   .   .   .   .   .
y/a  X   .   .   -   .   .   .   .   .
y/b  .   .   .   .   -   .   .   .   .
y/c  .   .   .   .   .   -   .   .   .
z/a  X   .   .   .   .   .   -   .   .
z/b  .   .   .   .   .   .   .   -   .
z/c  .   .   .   .   .   .   .   .   -
"""),

    *_cases("x-a-any-pod-selectors", "e2e 'any PodSelectors': pod=b or pod=c, same namespace only", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-pods-b-c, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from:
        - podSelector: {matchLabels: {pod: b}}
        - podSelector: {matchLabels: {pod: c}}
""", tcp80="""
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  -   .   .   .   .   .   .   .   .
x/b  .   -   .   .   .   .   .   .   .
x/c  .   .   -   .   .   .   .   .   .
y/a  X   .   .   -   .   .   .   .   .
y/b  X   .   .   .   -   .   .   .   .
y/c  X   .   .   .   .   -   .   .   .
z/a  X   .   .   .   .   .   -   .   .
z/b  X   .   .   .   .   .   .   -   .
z/c  X   .   .   .   .   .   .   .   -
"""),

    *_cases("deny-x-allow-to-a", "e2e 'allow ingress traffic for a target': deny-all in x, then allow all to x/a", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: x}
spec:
  podSelector: {}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all-to-a, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from: [{podSelector: {}, namespaceSelector: {}}]
""", tcp80="""
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  -   X   X   .   .   .   .   .   .
x/b  .   -   X   .   .   .   .   .   .
x/c  .   X   -   .   .   .   .   .   .
y/a  .   X   X   -   .   .   .   .   .
y/b  .   X   X   .   -   .   .   .   .
y/c  .   X   X   .   .   -   .   .   .
z/a  .   X   X   .   .   .   -   .   .
z/b  .   X   X   .   .   .   .   -   .
z/c  .   X   X   .   .   .   .   .   -
"""),

    *_cases("x-a-ns-y-port-81", "e2e 'based on Ports': only namespace y, only TCP 81", POLICY_X_A_FROM_NS_Y_TCP81,
            tcp80=NOTHING_INTO_X_A, tcp81=ONLY_Y_INTO_X_A, udp81=NOTHING_INTO_X_A),

    *_cases("x-a-named-port-81", "e2e 'ingress access on one named port': serve-81-tcp from anywhere", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-serve-81-tcp, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - ports: [{port: serve-81-tcp}]
""", tcp80=NOTHING_INTO_X_A, tcp81=ALL_ALLOWED, udp81=NOTHING_INTO_X_A),

    *_cases("x-a-named-port-udp", "a named UDP port: the name resolves with the rule's protocol", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-serve-80-udp, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - ports: [{port: serve-80-udp, protocol: UDP}]
""", udp80=ALL_ALLOWED, tcp80=NOTHING_INTO_X_A, udp81=NOTHING_INTO_X_A),

    *_cases("x-a-udp-80-only", "e2e 'allowing any port traffic on a specific protocol', numeric UDP 80", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-udp-80, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - ports: [{port: 80, protocol: UDP}]
""", udp80=ALL_ALLOWED, tcp80=NOTHING_INTO_X_A),

    *_cases("x-a-endport-81-90", "e2e endPort: TCP 81-90 from every namespace", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-81-to-90, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from: [{namespaceSelector: {}}]
      ports: [{port: 81, endPort: 90, protocol: TCP}]
""", tcp80=NOTHING_INTO_X_A, tcp81=ALL_ALLOWED),

    *_cases("x-a-egress-to-y-b", "e2e 'egress to a server in a different namespace based on PodSelector and "
            "NamespaceSelector'", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: x-a-to-y-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
    - to: [{namespaceSelector: {matchLabels: {ns: y}}, podSelector: {matchLabels: {pod: b}}}]
""", tcp80="""
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  -   X   X   X   .   X   X   X   X
x/b  .   -   .   .   .   .   .   .   .
x/c  .   .   -   .   .   .   .   .   .
y/a  .   .   .   -   .   .   .   .   .
y/b  .   .   .   .   -   .   .   .   .
y/c  .   .   .   .   .   -   .   .   .
z/a  .   .   .   .   .   .   -   .   .
z/b  .   .   .   .   .   .   .   -   .
z/c  .   .   .   .   .   .   .   .   -
"""),

    *_cases("x-a-egress-types-ignore-ingress", "explicit policyTypes [Egress]: the ingress rules are ignored, "
            "no egress rules deny all egress", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-only, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  ingress:
    - from: [{namespaceSelector: {matchLabels: {ns: y}}}]
""", tcp80=X_A_SENDS_NOTHING),

    *_cases("x-a-egress-rules-default-types", "no policyTypes + egress rules: defaulted to [Ingress, Egress], "
            "so x/a also denies all ingress", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-to-all-pods, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  egress:
    - to: [{namespaceSelector: {}}]
""", tcp80=NOTHING_INTO_X_A),

    *_cases("x-a-ingress-egress-x-b", "e2e 'Ingress, Egress specified together': x/a talks only with x/b", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: only-x-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress, Egress]
  ingress:
    - from: [{podSelector: {matchLabels: {pod: b}}}]
  egress:
    - to: [{podSelector: {matchLabels: {pod: b}}}]
""", tcp80="""
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  -   .   X   X   X   X   X   X   X
x/b  .   -   .   .   .   .   .   .   .
x/c  X   .   -   .   .   .   .   .   .
y/a  X   .   .   -   .   .   .   .   .
y/b  X   .   .   .   -   .   .   .   .
y/c  X   .   .   .   .   -   .   .   .
z/a  X   .   .   .   .   .   -   .   .
z/b  X   .   .   .   .   .   .   -   .
z/c  X   .   .   .   .   .   .   .   -
"""),

    *_cases("x-a-two-policies-union", "e2e 'multiple policies': pod=b (same ns) OR namespace y, "
            "from two policies", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-x-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from: [{podSelector: {matchLabels: {pod: b}}}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-ns-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from: [{namespaceSelector: {matchLabels: {ns: y}}}]
""", tcp80="""
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  -   .   .   .   .   .   .   .   .
x/b  .   -   .   .   .   .   .   .   .
x/c  X   .   -   .   .   .   .   .   .
y/a  .   .   .   -   .   .   .   .   .
y/b  .   .   .   .   -   .   .   .   .
y/c  .   .   .   .   .   -   .   .   .
z/a  X   .   .   .   .   .   -   .   .
z/b  X   .   .   .   .   .   .   -   .
z/c  X   .   .   .   .   .   .   .   -
"""),

    *_cases("x-not-a-isolated", "policy podSelector with NotIn: x/b and x/c deny all ingress, x/a open", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all-but-a, namespace: x}
spec:
  podSelector: {matchExpressions: [{key: pod, operator: NotIn, values: [a]}]}
""", tcp80="""
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  -   X   X   .   .   .   .   .   .
x/b  .   -   X   .   .   .   .   .   .
x/c  .   X   -   .   .   .   .   .   .
y/a  .   X   X   -   .   .   .   .   .
y/b  .   X   X   .   -   .   .   .   .
y/c  .   X   X   .   .   -   .   .   .
z/a  .   X   X   .   .   .   -   .   .
z/b  .   X   X   .   .   .   .   -   .
z/c  .   X   X   .   .   .   .   .   -
"""),

    *_cases("selector-matches-nothing", "a deny-all policy whose podSelector (DoesNotExist pod) selects no pod", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: selects-nothing, namespace: x}
spec:
  podSelector: {matchExpressions: [{key: pod, operator: DoesNotExist}]}
  policyTypes: [Ingress, Egress]
""", tcp80=ALL_ALLOWED),

    *_cases("x-allow-all", "recipe 02a: `ingress: [{}]` and `egress: [{}]` allow everything", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all, namespace: x}
spec:
  podSelector: {}
  ingress: [{}]
  egress: [{}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
""", tcp80=ALL_ALLOWED),

    *_cases("x-egress-port-81", "egress rule with ports and no `to`: namespace x may send to TCP 81 only", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-81, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
    - ports: [{port: 81}]
""", tcp80=X_SENDS_NOTHING, tcp81=ALL_ALLOWED, udp81=X_SENDS_NOTHING),

    *_cases("x-a-egress-named-port", "egress named port: serve-81-tcp resolves on each destination pod", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: egress-serve-81, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
    - to: [{namespaceSelector: {matchLabels: {team: blue}}}]
      ports: [{port: serve-81-tcp}]
""", tcp80=X_A_SENDS_NOTHING, tcp81="""
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  -   X   X   .   .   .   .   .   .
x/b  .   -   .   .   .   .   .   .   .
x/c  .   .   -   .   .   .   .   .   .
y/a  .   .   .   -   .   .   .   .   .
y/b  .   .   .   .   -   .   .   .   .
y/c  .   .   .   .   .   -   .   .   .
z/a  .   .   .   .   .   .   -   .   .
z/b  .   .   .   .   .   .   .   -   .
z/c  .   .   .   .   .   .   .   .   -
"""),

    *_cases("x-a-ipblock-except", "e2e 'ingress access from an IPBlock with except': node-1's pods only "
            "(172.16.0.0/16 except node-2's 172.16.2.0/24); ipBlock matches pod IPs", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-node-1-pods, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from: [{ipBlock: {cidr: 172.16.0.0/16, except: [172.16.2.0/24]}}]
""", tcp80="""
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  -   .   .   .   .   .   .   .   .
x/b  X   -   .   .   .   .   .   .   .
x/c  .   .   -   .   .   .   .   .   .
y/a  .   .   .   -   .   .   .   .   .
y/b  X   .   .   .   -   .   .   .   .
y/c  .   .   .   .   .   -   .   .   .
z/a  .   .   .   .   .   .   -   .   .
z/b  X   .   .   .   .   .   .   -   .
z/c  .   .   .   .   .   .   .   .   -
"""),

    *_cases("x-a-egress-ipblock-except", "e2e 'egress access to an IPBlock with except': node-2's pods but y/b", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: to-node-2-but-y-b, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
    - to: [{ipBlock: {cidr: 172.16.2.0/24, except: [172.16.2.21/32]}}]
""", tcp80="""
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  -   .   X   X   X   X   X   .   X
x/b  .   -   .   .   .   .   .   .   .
x/c  .   .   -   .   .   .   .   .   .
y/a  .   .   .   -   .   .   .   .   .
y/b  .   .   .   .   -   .   .   .   .
y/c  .   .   .   .   .   -   .   .   .
z/a  .   .   .   .   .   .   -   .   .
z/b  .   .   .   .   .   .   .   -   .
z/c  .   .   .   .   .   .   .   .   -
"""),

    *_cases("egress-x-meets-ingress-y-a", "both ends judged: x denies all egress, y/a admits only namespace x, "
            "so nobody reaches y/a", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-egress, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Egress]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: y-a-from-x, namespace: y}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
    - from: [{namespaceSelector: {matchLabels: {ns: x}}}]
""", tcp80="""
    x/a x/b x/c y/a y/b y/c z/a z/b z/c
x/a  -   X   X   X   X   X   X   X   X
x/b  X   -   X   X   X   X   X   X   X
x/c  X   X   -   X   X   X   X   X   X
y/a  .   .   .   -   .   .   .   .   .
y/b  .   .   .   X   -   .   .   .   .
y/c  .   .   .   X   .   -   .   .   .
z/a  .   .   .   X   .   .   -   .   .
z/b  .   .   .   X   .   .   .   -   .
z/c  .   .   .   X   .   .   .   .   -
"""),
]
