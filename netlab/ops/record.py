"""The state record of a lab (state.json): frozen dataclasses, and the only code that knows its keys.

What the lab is (networking, underlay, nodes, pods and their containers), which namespaces are
built as planned (their fingerprints), the NetworkPolicies enforced, the link impairments, and
the Services kube-proxy's rules serve (with their EndpointSlices' endpoints). Changed only by
`dataclasses.replace`; `to_json()`/`from_json()` are the on-disk format, versioned
(`"version": 1`). Files written before the format had a version (no "version" key; the first
ones also without pod ports and policies) still read. Addresses and CIDRs stay the strings
that were written, so that what `status --json` shows is exactly what was recorded.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from types import MappingProxyType
from typing import Any, Mapping

from ..kernel.procs import ProcRecord
from ..model.impairment import Impairment

VERSION = 1


class RecordError(ValueError):
    """A state file that is not a lab record of a format this netlab reads."""


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class Networking:
    """The cluster's networking as recorded: podSubnet, serviceSubnet and dnsDomain."""

    pod_subnet: str
    service_subnet: str
    dns_domain: str

    def to_json(self) -> dict:
        return {"dnsDomain": self.dns_domain, "podSubnet": self.pod_subnet, "serviceSubnet": self.service_subnet}

    @classmethod
    def from_json(cls, data: dict) -> Networking:
        return cls(data["podSubnet"], data["serviceSubnet"], data["dnsDomain"])


@dataclass(frozen=True)
class Underlay:
    """The lab's underlay as built: its subnet, MTU, and the VPC namespace."""

    subnet: str
    mtu: int
    netns: str

    def to_json(self) -> dict:
        return {"mtu": self.mtu, "netns": self.netns, "subnet": self.subnet}

    @classmethod
    def from_json(cls, data: dict) -> Underlay:
        return cls(data["subnet"], data["mtu"], data["netns"])


@dataclass(frozen=True)
class NamespaceRecord:
    """A namespace built as planned: its role (vpc, node, pod), subject and plan fingerprint."""

    role: str
    subject: str
    fingerprint: str | None

    def to_json(self) -> dict:
        return {"role": self.role, "subject": self.subject, "fingerprint": self.fingerprint}

    @classmethod
    def from_json(cls, name: str, data: dict) -> NamespaceRecord:
        return cls(data.get("role", "namespace"), data.get("subject", name), data.get("fingerprint"))


@dataclass(frozen=True)
class NodeRecord:
    """A node as built: its namespace, pod CIDR, underlay IP, rack, and flannel's subnet.env when the
    backend is flannel's."""

    name: str
    netns: str
    pod_cidr: str
    underlay_ip: str
    rack: str | None = None
    subnet_env: Mapping[str, str] | None = None    # flannel's subnet.env, for the node

    def __post_init__(self) -> None:
        if self.subnet_env is not None:
            object.__setattr__(self, "subnet_env", _frozen(self.subnet_env))

    def to_json(self) -> dict:
        return {"name": self.name, "netns": self.netns, "podCIDR": self.pod_cidr, "underlayIP": self.underlay_ip,
                "rack": self.rack, "subnetEnv": None if self.subnet_env is None else dict(self.subnet_env)}

    @classmethod
    def from_json(cls, data: dict) -> NodeRecord:
        return cls(data["name"], data["netns"], data["podCIDR"], data["underlayIP"], data.get("rack"),
                   data.get("subnetEnv"))


@dataclass(frozen=True)
class PortRecord:
    """A container port a pod declares: number, protocol and optional name."""

    port: int
    protocol: str       # "TCP", "UDP", "SCTP"
    name: str | None = None

    def to_json(self) -> dict:
        return {"port": self.port, "protocol": self.protocol, "name": self.name}

    @classmethod
    def from_json(cls, data: dict) -> PortRecord:
        return cls(data["port"], data["protocol"], data.get("name"))


@dataclass(frozen=True)
class SandboxRecord:
    """A pod's sandbox: its init (catatonit, PID 1 of the pod's PID namespace) as started."""

    pid: int
    start: int          # the init's start time (clock ticks after boot): a reused pid is not it

    def to_json(self) -> dict:
        return {"pid": self.pid, "start": self.start}

    @classmethod
    def from_json(cls, data: Any) -> SandboxRecord | None:
        """None for anything but {"pid": int, "start": int}: the kernel is asked anyway."""
        if not isinstance(data, dict):
            return None
        pid, start = data.get("pid"), data.get("start")
        if type(pid) is not int or type(start) is not int or pid <= 0:
            return None
        return cls(pid, start)


@dataclass(frozen=True)
class PodRecord:
    """A pod as built: its Kubernetes namespace, node, IP, network namespace, labels, ports, containers
    and sandbox."""

    name: str
    namespace: str
    node: str
    ip: str
    netns: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[PortRecord, ...] = ()
    containers: tuple[ProcRecord, ...] = ()
    sandbox: SandboxRecord | None = None   # its init, once started

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", _frozen(self.labels))
        object.__setattr__(self, "ports", tuple(self.ports))
        object.__setattr__(self, "containers", tuple(self.containers))

    @property
    def key(self) -> str:
        """namespace/name, as pods are named everywhere else."""
        return f"{self.namespace}/{self.name}"

    def to_json(self) -> dict:
        out = {"name": self.name, "namespace": self.namespace, "node": self.node, "ip": self.ip,
               "netns": self.netns, "labels": dict(self.labels), "ports": [p.to_json() for p in self.ports],
               "containers": [c.to_json() for c in self.containers]}
        if self.sandbox is not None:   # only when there is one: records without keep the earlier shape
            out["sandbox"] = self.sandbox.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict) -> PodRecord:
        return cls(data["name"], data["namespace"], data["node"], data["ip"], data["netns"],
                   data.get("labels") or {}, tuple(PortRecord.from_json(p) for p in data.get("ports", [])),
                   _containers(data.get("containers", [])), SandboxRecord.from_json(data.get("sandbox")))


def _containers(entries: list) -> tuple[ProcRecord, ...]:
    """The recorded container processes; entries of another shape are skipped, not fatal."""
    out = []
    for entry in entries:
        try:
            out.append(ProcRecord.from_json(entry))
        except (TypeError, KeyError, ValueError, AttributeError):
            continue
    return tuple(out)


@dataclass(frozen=True)
class ImpairmentRecord:
    """A tc impairment on a lab interface: from the lab file ("file") or `netlab impair` ("cli")."""

    target: str                 # as the user named it: a node, or namespace/pod
    netns: str
    interface: str
    source: str
    impairment: Impairment

    def to_json(self) -> dict:
        return {"target": self.target, "netns": self.netns, "interface": self.interface, "source": self.source,
                **self.impairment.to_json()}

    @classmethod
    def from_json(cls, data: dict) -> ImpairmentRecord:
        return cls(data.get("target", ""), data["netns"], data["interface"], data.get("source", "cli"),
                   Impairment.from_json(data))


@dataclass(frozen=True)
class ServicePortRecord:
    """A Service port as kube-proxy serves it: targetPort a number or a container port's name."""

    name: str | None
    port: int
    target_port: int | str
    protocol: str               # "TCP", "UDP", "SCTP"
    node_port: int | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "nodePort": self.node_port, "port": self.port, "protocol": self.protocol,
                "targetPort": self.target_port}

    @classmethod
    def from_json(cls, data: dict) -> ServicePortRecord:
        return cls(data.get("name"), data["port"], data["targetPort"], data["protocol"], data.get("nodePort"))


@dataclass(frozen=True)
class EndpointRecord:
    """One endpoint of a Service's EndpointSlices: a selected pod, ready or not."""

    pod: str                    # namespace/name
    ip: str
    ready: bool
    node: str | None = None

    def to_json(self) -> dict:
        return {"ip": self.ip, "node": self.node, "pod": self.pod, "ready": self.ready}

    @classmethod
    def from_json(cls, data: dict) -> EndpointRecord:
        return cls(data["pod"], data["ip"], data["ready"], data.get("node"))


@dataclass(frozen=True)
class ServiceRecord:
    """A Service as kube-proxy was last programmed with it: its ClusterIP, ports, endpoints."""

    name: str
    namespace: str
    type: str                   # ClusterIP, NodePort, ExternalName
    cluster_ip: str | None      # "None" when headless, None for ExternalName
    ports: tuple[ServicePortRecord, ...] = ()
    endpoints: tuple[EndpointRecord, ...] = ()
    note: str | None = None     # why there are no managed endpoints (no selector)
    external_name: str | None = None
    affinity_timeout: int | None = None   # seconds, with sessionAffinity ClientIP

    def __post_init__(self) -> None:
        object.__setattr__(self, "ports", tuple(self.ports))
        object.__setattr__(self, "endpoints", tuple(self.endpoints))

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def to_json(self) -> dict:
        """The contract's entry of `status --json`'s `services` (keys sorted, as the state file has them)."""
        out: dict[str, Any] = {"clusterIP": self.cluster_ip, "endpoints": [e.to_json() for e in self.endpoints]}
        if self.external_name is not None:
            out["externalName"] = self.external_name
        out |= {"name": self.name, "namespace": self.namespace}
        if self.note is not None:
            out["note"] = self.note
        out["ports"] = [p.to_json() for p in self.ports]
        if self.affinity_timeout is not None:
            out["sessionAffinity"] = {"timeoutSeconds": self.affinity_timeout, "type": "ClientIP"}
        out["type"] = self.type
        return out

    @classmethod
    def from_json(cls, data: dict) -> ServiceRecord:
        affinity = data.get("sessionAffinity")
        return cls(data["name"], data["namespace"], data["type"], data.get("clusterIP"),
                   tuple(ServicePortRecord.from_json(p) for p in data.get("ports", [])),
                   tuple(EndpointRecord.from_json(e) for e in data.get("endpoints", [])),
                   data.get("note"), data.get("externalName"),
                   affinity.get("timeoutSeconds") if affinity else None)


@dataclass(frozen=True)
class LabRecord:
    """One lab as recorded: what it is, what is built, what runs in it."""

    name: str
    backend: str
    source: str                 # the lab file's absolute path, or "<...>" when it came from elsewhere
    networking: Networking
    status: str | None = None   # building, ready, failed
    updated: str | None = None  # ISO 8601, UTC, seconds
    mtu: int | None = None      # the pods' MTU
    underlay: Underlay | None = None
    namespaces: Mapping[str, NamespaceRecord] = field(default_factory=dict)
    nodes: tuple[NodeRecord, ...] = ()
    pods: tuple[PodRecord, ...] = ()
    policies: tuple[str, ...] = ()     # NetworkPolicies enforced (namespace/name)
    policy_digest: str | None = None   # of the nft rules written; None without policies
    pending: tuple[str, ...] | None = None   # namespaces being created by a run not yet finished
    impairments: tuple[ImpairmentRecord, ...] = ()
    services: tuple[ServiceRecord, ...] = ()   # as kube-proxy's rules were last written
    # node -> digest of the nft rules in force there (`nft -f` is atomic per node, not per lab);
    # `policies`/`policy_digest` are claimed only once every node holds them. Empty: not known
    # per node (a record from before, or a lab without policies): every node is rewritten.
    policy_nodes: Mapping[str, str] = field(default_factory=dict)
    # the lab's responder (kernel/labresponder.py) as last started: one process serving every
    # container with ports and no command; those containers' records carry its pid
    responder: ProcRecord | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "namespaces", _frozen(self.namespaces))
        object.__setattr__(self, "policy_nodes", _frozen(self.policy_nodes))
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "pods", tuple(self.pods))
        object.__setattr__(self, "policies", tuple(self.policies))
        object.__setattr__(self, "impairments", tuple(self.impairments))
        object.__setattr__(self, "services", tuple(self.services))
        if self.pending is not None:
            object.__setattr__(self, "pending", tuple(self.pending))

    @cached_property
    def fingerprints(self) -> Mapping[str, str | None]:
        """namespace name -> the fingerprint of the plan it was built from."""
        return MappingProxyType({name: ns.fingerprint for name, ns in self.namespaces.items()})

    @property
    def containers(self) -> tuple[ProcRecord, ...]:
        """Every recorded container process of the lab."""
        return tuple(c for pod in self.pods for c in pod.containers)

    def pod(self, key: str) -> PodRecord | None:
        """The pod `namespace/name`, if recorded."""
        return next((p for p in self.pods if p.key == key), None)

    def with_pods(self, changed: Mapping[str, PodRecord]) -> LabRecord:
        """The record with the pods in `changed` (namespace/name -> pod) in place of those recorded."""
        if not changed:
            return self
        return replace(self, pods=tuple(changed.get(p.key, p) for p in self.pods))

    def with_policies(self, policies: tuple[str, ...], digest: str) -> LabRecord:
        """After a converge: the policies enforced and the digest of the rules (kept only with policies)."""
        return replace(self, policies=policies, policy_digest=digest if policies else None)

    def with_enforced(self, policies: tuple[str, ...], digest: str, held: Mapping[str, str],
                      complete: bool) -> LabRecord:
        """After a converge: the rules in force per node (`held`). The lab-wide policies and digest
        are claimed only when every node holds them (`complete`); then, without policies, nothing
        is kept per node either (the record keeps its earlier shape)."""
        if not complete:
            return replace(self, policy_nodes=held)
        return replace(self.with_policies(policies, digest), policy_nodes=held if policies else {})

    def to_json(self) -> dict:
        out = {
            "version": VERSION, "name": self.name, "backend": self.backend, "source": self.source,
            "status": self.status, "updated": self.updated, "mtu": self.mtu,
            "networking": self.networking.to_json(),
            "underlay": None if self.underlay is None else self.underlay.to_json(),
            "namespaces": {name: ns.to_json() for name, ns in self.namespaces.items()},
            "nodes": [n.to_json() for n in self.nodes], "pods": [p.to_json() for p in self.pods],
            "policies": list(self.policies), "policyDigest": self.policy_digest,
        }
        if self.impairments:   # only when there are some: a lab without keeps the earlier shape
            out["impairments"] = [i.to_json() for i in self.impairments]
        if self.services:      # likewise: only a lab with Services (or kube-proxy rules) has the key
            out["services"] = [svc.to_json() for svc in self.services]
        if self.policy_nodes:  # likewise: only a lab with policies (or rules left on a node) has the key
            out["policyNodes"] = dict(sorted(self.policy_nodes.items()))
        if self.pending is not None:
            out["pending"] = list(self.pending)
        if self.responder is not None:   # only labs with ports served by it
            out["responder"] = self.responder.to_json()
        return out

    @classmethod
    def from_json(cls, data: Any) -> LabRecord:
        """A record from its JSON; RecordError when it is not one (or of a newer format)."""
        if not isinstance(data, dict):
            raise RecordError("not a JSON object")
        version = data.get("version", 0)
        if not isinstance(version, int) or version > VERSION:
            raise RecordError(f"format version {version!r}, written by a newer netlab (this one reads "
                              f"versions up to {VERSION})")
        try:
            return cls(
                name=data["name"], backend=data["backend"], source=data.get("source", ""),
                networking=Networking.from_json(data["networking"]), status=data.get("status"),
                updated=data.get("updated"), mtu=data.get("mtu"),
                underlay=Underlay.from_json(data["underlay"]) if data.get("underlay") else None,
                namespaces={name: NamespaceRecord.from_json(name, ns)
                            for name, ns in data.get("namespaces", {}).items()},
                nodes=tuple(NodeRecord.from_json(n) for n in data.get("nodes", [])),
                pods=tuple(PodRecord.from_json(p) for p in data.get("pods", [])),
                policies=tuple(data.get("policies") or ()), policy_digest=data.get("policyDigest"),
                pending=data.get("pending"),
                impairments=tuple(ImpairmentRecord.from_json(i) for i in data.get("impairments", [])),
                services=tuple(ServiceRecord.from_json(s) for s in data.get("services") or ()),
                policy_nodes=dict(data.get("policyNodes") or {}),
                responder=ProcRecord.from_json(data["responder"]) if data.get("responder") else None)
        except (KeyError, TypeError, AttributeError) as err:
            raise RecordError(f"not a lab record ({type(err).__name__}: {err})") from err

