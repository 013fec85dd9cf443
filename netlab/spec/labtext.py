"""Lab files as text, generated: the one generator behind `netlab bench`, the scale benchmark and the tests."""
from __future__ import annotations

import textwrap


def lab_yaml(name: str, backend: str = "vxlan", nodes: int = 2, pods: str = "", extra_spec: str = "",
             pod_subnet: str = "172.16.0.0/16", service_subnet: str = "172.18.0.0/20",
             scale: tuple[int, int] | None = None, dns: bool = False) -> str:
    """A ClusterConfiguration and a Lab with `nodes` listed nodes (node-1...), or the compact
    form `scale: {nodes, podsPerNode}` when `scale` is given; `pods` (documents) appended.
    Cluster DNS is left out unless `dns`: benchmarks measure pod networking, and tests count
    the pods they declare (a test of DNS turns it on)."""
    head = textwrap.dedent(f"""\
        apiVersion: kubeadm.k8s.io/v1beta4
        kind: ClusterConfiguration
        networking:
          podSubnet: "{pod_subnet}"
          serviceSubnet: "{service_subnet}"
        ---
        apiVersion: netlab/v1alpha1
        kind: Lab
        metadata:
          name: {name}
        spec:
          backend: {backend}
        """) + ("" if dns else "  dns: {enabled: false}\n") + extra_spec
    if scale is not None:
        return head + f"  scale: {{nodes: {scale[0]}, podsPerNode: {scale[1]}}}\n" + pods
    node_list = "\n".join(f"    - name: node-{i}" for i in range(1, nodes + 1))
    return head + "  nodes:\n" + node_list + "\n" + pods


def pod_yaml(name: str, node: str, namespace: str = "default", ports: str = "[{containerPort: 80}]",
             labels: str = "", command: str = "", containers: str | None = None, own_label: bool = True) -> str:
    """A Pod document on `node`: one container `c` (with `command`, or a responder on `ports`),
    or the given `containers` list; labelled `pod: NAME` (own_label) plus `labels`."""
    if containers is None:
        containers = f"[{{name: c, command: {command}}}]" if command else f"[{{name: c, ports: {ports}}}]"
    label_items = ([f"pod: {name}"] if own_label else []) + ([labels] if labels else [])
    return textwrap.dedent(f"""\
        ---
        apiVersion: v1
        kind: Pod
        metadata: {{name: {name}, namespace: {namespace}, labels: {{{', '.join(label_items)}}}}}
        spec:
          nodeName: {node}
          containers: {containers}
        """)


def split_policies(nodes: list[str], namespace: str = "default") -> str:
    """Two NetworkPolicy documents for the compact form's pods (labelled `node: node-N`): pods
    on `nodes` take connections only from, and open them only to, pods on `nodes`. The
    probe benchmark and its test use it to deny about half of a lab's pairs."""
    group = "{matchExpressions: [{key: node, operator: In, values: [" + ", ".join(nodes) + "]}]}"
    return "".join(textwrap.dedent(f"""\
        ---
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {{name: split-{kind}, namespace: {namespace}}}
        spec:
          podSelector: {group}
          policyTypes: [{kind.capitalize()}]
          {kind}: [{{{peer}: [{{podSelector: {group}}}]}}]
        """) for kind, peer in (("ingress", "from"), ("egress", "to")))


def scale_lab_yaml(name: str, nodes: int, pods_per_node: int, ports: tuple[int, ...] = (),
                   documents: str = "", backend: str = "vxlan") -> str:
    """The compact form with `ports` served by each pod's responder; `documents` appended."""
    text = lab_yaml(name, backend=backend, scale=(nodes, pods_per_node), pods=documents)
    if ports:
        text = text.replace(f"podsPerNode: {pods_per_node}}}",
                            f"podsPerNode: {pods_per_node}, ports: [{', '.join(map(str, ports))}]}}")
    return text
