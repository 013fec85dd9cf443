"""Which namespaces talk to each other: the bench lab of one backend, and its three pods.

Every backend gets its own small lab, `<prefix>-<backend>`: two nodes, a client pod and a
server pod on node-1 (same-node path: veth → cni0 → veth) and a server pod on node-2
(cross-node path: through the backend's datapath and the underlay).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ...model.lab import LabFile
from ...ops.record import LabRecord
from ...spec.labtext import lab_yaml, pod_yaml

K8S_NAMESPACE = "bench"
CLIENT, SAME_NODE_SERVER, CROSS_NODE_SERVER = "client", "server-same", "server-cross"
PODS = ((CLIENT, "node-1"), (SAME_NODE_SERVER, "node-1"), (CROSS_NODE_SERVER, "node-2"))
BASELINE_BACKEND = "veth"


class PathKind(StrEnum):
    SAME_NODE = "same-node"
    CROSS_NODE = "cross-node"
    BASELINE = "baseline"


@dataclass(frozen=True)
class Endpoint:
    """One side of a measured path: a namespace, its address, and whose it is (lab, subject)."""

    lab: str
    subject: str     # pod as namespace/name, or the baseline side's name
    netns: str
    ip: str


@dataclass(frozen=True)
class PathPair:
    """One measured path: the backend, the path's kind (same-node, cross-node, baseline), client and server."""

    backend: str     # "veth" for the baseline
    path: PathKind
    client: Endpoint
    server: Endpoint

    @property
    def label(self) -> str:
        return f"{self.backend} {self.path.value}"


def lab_name(prefix: str, backend: str) -> str:
    return f"{prefix}-{backend}"


def lab_text(name: str, backend: str) -> str:
    """The bench lab as a lab file: the seed's networking, two nodes, three pods without containers."""
    pods = "".join(pod_yaml(pod, node, K8S_NAMESPACE, labels="app: netlab-bench", containers="[]", own_label=False)
                   for pod, node in PODS)
    return lab_yaml(name, backend, nodes=2, pods=pods)


def lab_pairs(labfile: LabFile, record: LabRecord) -> list[PathPair]:
    """The same-node and cross-node pairs of a bench lab that is up (its state record)."""
    name, backend = labfile.lab.name, labfile.lab.backend.value
    pods = {p.name: p for p in record.pods if p.namespace == K8S_NAMESPACE}

    def endpoint(pod: str) -> Endpoint:
        rec = pods[pod]
        return Endpoint(name, f"{K8S_NAMESPACE}/{pod}", rec.netns, rec.ip)

    client = endpoint(CLIENT)
    return [PathPair(backend, PathKind.SAME_NODE, client, endpoint(SAME_NODE_SERVER)),
            PathPair(backend, PathKind.CROSS_NODE, client, endpoint(CROSS_NODE_SERVER))]
