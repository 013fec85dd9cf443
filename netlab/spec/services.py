"""Service and Deployment documents → model objects, each problem with its field path.

Deployments are expanded into pods the way the ReplicaSet controller names them:
`<deployment>-<pod-template-hash>-<5 characters>`. The hash is kube-controller-manager's
(`controller.ComputeHash`: FNV-32a of the template, its decimal value encoded with
`rand.SafeEncodeString`); Go hashes a `spew` dump of the typed PodTemplateSpec, which a
YAML reader cannot reproduce, so netlab hashes the template's canonical JSON — same
function, same alphabet, a different input. The 5-character suffix uses
`rand.String`'s alphabet; it is derived from the names instead of drawn at random so
that the same file always yields the same pods.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace

from ..core import backends, clusterip
from ..core.clusterip import KUBERNETES_SERVICE
from ..model.checks import DocChecker, IANA_SVC_NAME, MISSING
from ..model.lab import LabFile, LabSpec, NodeSpec, Pod, Protocol, frozen_map
from ..model.service import (DEFAULT_AFFINITY_TIMEOUT, Deployment, Service, ServicePort, ServiceType,
                             TrafficPolicy)
from .collected import Collected
from .kubeobjects import load_pod

ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"   # k8s.io/apimachinery/pkg/util/rand
NODE_PORT_RANGE = clusterip.NODE_PORT_RANGE   # kube-apiserver --service-node-port-range default
SERVICE_KEYS = ("apiVersion", "kind", "metadata", "spec", "status")
SERVICE_SPEC_KEYS = ("type", "selector", "ports", "clusterIP", "clusterIPs", "sessionAffinity",
                     "sessionAffinityConfig", "internalTrafficPolicy", "externalTrafficPolicy", "externalName",
                     "ipFamilies", "ipFamilyPolicy", "publishNotReadyAddresses")
DEPLOYMENT_SPEC_KEYS = ("replicas", "selector", "template", "strategy", "revisionHistoryLimit",
                        "progressDeadlineSeconds", "minReadySeconds", "paused")


def fnv32a(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """rand.SafeEncodeString: each character mapped onto the 27-letter alphabet."""
    return "".join(ALPHANUMS[ord(c) % len(ALPHANUMS)] for c in text)


def pod_template_hash(template: object) -> str:
    canonical = json.dumps(template, sort_keys=True, separators=(",", ":"), default=str)
    return safe_encode(str(fnv32a(canonical.encode())))


def replica_suffix(deployment_key: str, template_hash: str, index: int, attempt: int = 0) -> str:
    digest = hashlib.sha256(f"{deployment_key}/{template_hash}/{index}/{attempt}".encode()).digest()
    return "".join(ALPHANUMS[b % len(ALPHANUMS)] for b in digest[:5])


def load_service(raw: dict, check: DocChecker) -> Service | None:
    check.known_keys(raw, "", SERVICE_KEYS)
    meta = check.mapping(raw.get("metadata", MISSING), "metadata", required=True)
    check.known_keys(meta, "metadata", ("name", "namespace", "labels", "annotations"))
    name = check.dns_label(meta.get("name", MISSING), "metadata.name", "service name")
    namespace = check.dns_label(meta.get("namespace", MISSING), "metadata.namespace", "namespace",
                                required=False) or "default"
    check.label = f"Service({namespace}/{name})" if name else "Service"
    check.labels(meta.get("labels", MISSING), "metadata.labels")
    spec = check.mapping(raw.get("spec", MISSING), "spec", required=True)
    check.known_keys(spec, "spec", SERVICE_SPEC_KEYS)
    type_text = check.string(spec.get("type", MISSING), "spec.type") or ServiceType.CLUSTER_IP.value
    try:
        svc_type = ServiceType(type_text)
    except ValueError:
        check.error("spec.type", f"unknown or unsupported Service type {type_text!r}",
                    "use ClusterIP, NodePort or ExternalName (netlab has no load balancer)")
        svc_type = ServiceType.CLUSTER_IP
    selector = None
    if "selector" in spec and spec["selector"] is not None:
        selector = frozen_map(check.labels(spec["selector"], "spec.selector"))
    external_name = check.string(spec.get("externalName", MISSING), "spec.externalName")
    if svc_type is ServiceType.EXTERNAL_NAME and not external_name:
        check.error("spec.externalName", "is required for type ExternalName", "e.g. externalName: example.com")
    headless, pinned = False, None
    ip_text = spec.get("clusterIP", MISSING)
    if ip_text not in (MISSING, None, ""):
        if ip_text == "None":
            headless = True
            if svc_type is ServiceType.NODE_PORT:
                check.error("spec.clusterIP", "a headless Service (clusterIP: None) cannot be a NodePort",
                            "remove clusterIP: None or use type ClusterIP")
        else:
            pinned = check.address(ip_text, "spec.clusterIP", "clusterIP")
    ports = _load_ports(spec, check, svc_type)
    affinity = check.string(spec.get("sessionAffinity", MISSING), "spec.sessionAffinity") or "None"
    if affinity not in ("None", "ClientIP"):
        check.error("spec.sessionAffinity", f"unknown sessionAffinity {affinity!r}", "use None or ClientIP")
    config = check.mapping(spec.get("sessionAffinityConfig", MISSING), "spec.sessionAffinityConfig")
    check.known_keys(config, "spec.sessionAffinityConfig", ("clientIP",))
    client_ip = check.mapping(config.get("clientIP", MISSING), "spec.sessionAffinityConfig.clientIP")
    check.known_keys(client_ip, "spec.sessionAffinityConfig.clientIP", ("timeoutSeconds",))
    timeout = check.integer(client_ip.get("timeoutSeconds", MISSING),
                            "spec.sessionAffinityConfig.clientIP.timeoutSeconds", 1, 86400)
    if config and affinity != "ClientIP":
        check.error("spec.sessionAffinityConfig", "given without sessionAffinity: ClientIP",
                    "add sessionAffinity: ClientIP or remove it")
    internal = _policy(spec, "internalTrafficPolicy", check)
    external = _policy(spec, "externalTrafficPolicy", check)
    if "externalTrafficPolicy" in spec and svc_type is not ServiceType.NODE_PORT:
        check.error("spec.externalTrafficPolicy", "only a NodePort Service has external traffic",
                    "remove it or use type: NodePort")
    if name is None:
        return None
    return Service(name, namespace, svc_type, selector, ports, pinned, headless, affinity == "ClientIP",
                   timeout or DEFAULT_AFFINITY_TIMEOUT, internal, external, external_name)


def _policy(spec: dict, key: str, check: DocChecker) -> TrafficPolicy:
    text = check.string(spec.get(key, MISSING), f"spec.{key}") or TrafficPolicy.CLUSTER.value
    try:
        return TrafficPolicy(text)
    except ValueError:
        check.error(f"spec.{key}", f"unknown {key} {text!r}", "use Cluster or Local")
        return TrafficPolicy.CLUSTER


def _load_ports(spec: dict, check: DocChecker, svc_type: ServiceType) -> tuple[ServicePort, ...]:
    ports: list[ServicePort] = []
    listed = check.sequence(spec.get("ports", MISSING), "spec.ports")
    if not listed and spec and svc_type is not ServiceType.EXTERNAL_NAME:
        check.error("spec.ports", "a Service needs at least one port", "e.g. ports: [{port: 80}]")
    seen: dict[tuple[int, str], str] = {}
    names: set[str] = set()
    for i, entry in enumerate(listed):
        path = f"spec.ports[{i}]"
        raw = check.mapping(entry, path, required=True)
        check.known_keys(raw, path, ("name", "port", "targetPort", "protocol", "nodePort", "appProtocol"))
        port = check.integer(raw.get("port", MISSING), f"{path}.port", 1, 65535)
        if "port" not in raw:
            check.error(f"{path}.port", "is required", "e.g. port: 80")
        proto_text = check.string(raw.get("protocol", MISSING), f"{path}.protocol") or "TCP"
        try:
            protocol = Protocol(proto_text)
        except ValueError:
            check.error(f"{path}.protocol", f"unknown protocol {proto_text!r}", "use TCP, UDP or SCTP")
            protocol = Protocol.TCP
        name = check.string(raw.get("name", MISSING), f"{path}.name") or ""
        if name and (len(name) > 15 or not IANA_SVC_NAME.match(name)):
            check.error(f"{path}.name", f"port name {name!r} is not a DNS-1123 label of at most 15 characters")
        if len(listed) > 1 and not name:
            check.error(f"{path}.name", "is required when a Service has several ports", "e.g. name: http")
        if name in names:
            check.error(f"{path}.name", f"duplicate port name {name!r}", "port names must be unique")
        names.add(name)
        target = _target_port(raw.get("targetPort", MISSING), f"{path}.targetPort", check)
        node_port = check.integer(raw.get("nodePort", MISSING), f"{path}.nodePort", *NODE_PORT_RANGE)
        if "nodePort" in raw and svc_type is not ServiceType.NODE_PORT:
            check.error(f"{path}.nodePort", f"nodePort given for a {svc_type.value} Service", "use type: NodePort")
            node_port = None
        if port is None:
            continue
        clash = seen.get((port, protocol.value))
        if clash:
            check.error(f"{path}.port", f"port {port}/{protocol.value} is already declared at {clash}")
            continue
        seen[(port, protocol.value)] = path
        ports.append(ServicePort(port, protocol, name, target, node_port))
    return tuple(ports)


def _target_port(value: object, path: str, check: DocChecker) -> int | str | None:
    if value is MISSING or value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return check.integer(value, path, 1, 65535)
    if isinstance(value, str) and value and len(value) <= 15 and IANA_SVC_NAME.match(value) \
            and not value.isdigit():
        return value
    check.error(path, f"targetPort {value!r} is neither a port number nor a container port's name",
                "e.g. targetPort: 8080 or targetPort: http")
    return None


class _Within(DocChecker):
    """A checker whose paths are under `prefix` (a Deployment's pod template)."""

    def __init__(self, outer: DocChecker, prefix: str):
        super().__init__(outer.doc, outer.problems, outer.label)
        self.outer, self.prefix = outer, prefix

    def error(self, path: str, message: str, hint: str = "") -> None:
        self.errors += 1   # reported under the Deployment's label, whatever load_pod names the template
        self.outer.error(f"{self.prefix}.{path}" if path else self.prefix, message, hint)


@dataclass(frozen=True)
class LoadedDeployment:
    """A Deployment as loaded, with its pod template as a Pod named like the Deployment."""

    deployment: Deployment
    template: Pod   # the template as a pod named like the Deployment; replicas are copies of it


def load_deployment(raw: dict, check: DocChecker) -> LoadedDeployment | None:
    check.known_keys(raw, "", SERVICE_KEYS)
    meta = check.mapping(raw.get("metadata", MISSING), "metadata", required=True)
    check.known_keys(meta, "metadata", ("name", "namespace", "labels", "annotations"))
    name = check.dns_label(meta.get("name", MISSING), "metadata.name", "deployment name", max_len=47)
    namespace = check.dns_label(meta.get("namespace", MISSING), "metadata.namespace", "namespace",
                                required=False) or "default"
    label = f"Deployment({namespace}/{name})" if name else "Deployment"
    check.label = label
    spec = check.mapping(raw.get("spec", MISSING), "spec", required=True)
    check.known_keys(spec, "spec", DEPLOYMENT_SPEC_KEYS)
    replicas = check.integer(spec.get("replicas", MISSING), "spec.replicas", 0, 250)
    selector_raw = check.mapping(spec.get("selector", MISSING), "spec.selector", required=True)
    check.known_keys(selector_raw, "spec.selector", ("matchLabels",))
    selector = check.labels(selector_raw.get("matchLabels", MISSING), "spec.selector.matchLabels")
    if selector_raw and not selector:
        check.error("spec.selector.matchLabels", "is required", "e.g. matchLabels: {app: web}")
    template = check.mapping(spec.get("template", MISSING), "spec.template", required=True)
    check.known_keys(template, "spec.template", ("metadata", "spec"))
    tmeta = dict(check.mapping(template.get("metadata", MISSING), "spec.template.metadata"))
    tspec = dict(check.mapping(template.get("spec", MISSING), "spec.template.spec", required=True))
    inner = _Within(check, "spec.template")
    node_selector = inner.labels(tspec.pop("nodeSelector", MISSING), "spec.nodeSelector")
    if "name" in tmeta or "namespace" in tmeta:
        inner.error("metadata", "a pod template has no name or namespace of its own",
                    "remove them: pods are named after the Deployment")
    tmeta = {k: v for k, v in tmeta.items() if k not in ("name", "namespace")}
    pod = load_pod({"metadata": {**tmeta, "name": name or "invalid", "namespace": namespace}, "spec": tspec},
                   inner)
    check.label = label
    if pod is not None and selector and any(pod.labels.get(k) != v for k, v in selector.items()):
        check.error("spec.template.metadata.labels", "the template's labels do not match spec.selector",
                    "give the template every label of selector.matchLabels")
    if name is None or pod is None:
        return None
    deployment = Deployment(name, namespace, 1 if replicas is None else replicas, frozen_map(selector),
                            pod_template_hash(template), pod.node or None, frozen_map(node_selector))
    return LoadedDeployment(deployment, pod)


def expand(loaded: LoadedDeployment, nodes: list[str], taken: set[str]) -> list[Pod]:
    """The Deployment's pods, named as its ReplicaSet names them, placed on `nodes` round robin."""
    dep, template = loaded.deployment, loaded.template
    labels = frozen_map({**template.labels, "pod-template-hash": dep.template_hash})
    pods = []
    for i in range(dep.replicas):
        attempt = 0
        while True:
            name = f"{dep.name}-{dep.template_hash}-{replica_suffix(dep.key, dep.template_hash, i, attempt)}"
            if f"{dep.namespace}/{name}" not in taken:
                break
            attempt += 1
        taken.add(f"{dep.namespace}/{name}")
        node = nodes[i % len(nodes)] if nodes else ""
        pods.append(replace(template, name=name, node=node, labels=labels, pinned_ip=None))
    return pods


HOSTNAME_LABEL = "kubernetes.io/hostname"


def node_labels(node: NodeSpec) -> dict[str, str]:
    """A node's labels as the kubelet registers them: the Lab's, plus kubernetes.io/hostname."""
    return {HOSTNAME_LABEL: node.name, **node.labels}


def expand_deployments(got: Collected, lab: LabSpec) -> list[tuple[Pod, DocChecker]]:
    """Every Deployment's pods, placed by nodeName, by nodeSelector on node labels, or spread."""
    out: list[tuple[Pod, DocChecker]] = []
    taken = {pod.key for pod, _ in got.pods}
    names = [n.name for n in lab.nodes]
    for loaded, check in got.deployments:
        dep = loaded.deployment
        if dep.node_name:
            if dep.node_name not in names:
                check.error("spec.template.spec.nodeName", f"unknown node {dep.node_name!r}",
                            "use one of: " + ", ".join(names))
                continue
            candidates = [dep.node_name]
        else:
            candidates = [n.name for n in lab.nodes
                          if all(node_labels(n).get(k) == v for k, v in dep.node_selector.items())]
            if not candidates and names:
                check.error("spec.template.spec.nodeSelector", "no node has the labels "
                            + ", ".join(f"{k}={v}" for k, v in dep.node_selector.items()),
                            "give nodes `labels:` in the Lab, or change the nodeSelector")
                continue
        out += [(pod, check) for pod in expand(loaded, candidates, taken)]
    return out


def with_kubernetes_service(got: Collected) -> tuple[Service, ...]:
    """The file's Services, with `default/kubernetes` (the API server's) first unless declared."""
    declared = tuple(svc for svc, _ in got.services)
    if any(svc.key == KUBERNETES_SERVICE for svc in declared):
        return declared
    api = Service("kubernetes", "default", ServiceType.CLUSTER_IP, None,
                  (ServicePort(443, Protocol.TCP, "https", 6443),))
    return (api,) + declared


def check_services(lab: LabFile, got: Collected, lab_check: DocChecker) -> None:
    checks = {svc.key: check for svc, check in got.services}
    if clusterip.has_services(lab) and backends.of(lab).pods_on_underlay:
        lab_check.error("spec.backend", f"backend {lab.lab.backend.value!r} cannot serve the file's Services: its pods "
                        "sit on the underlay and reach each other without crossing a node namespace, where "
                        "kube-proxy's rules live", "use vxlan, host-gw or ipip for a lab with Services")
    try:
        clusterip.allocate(lab.services, lab.networking.service_subnet)
    except clusterip.ServiceAllocationError as err:
        (checks.get(err.subject) or lab_check).error(err.field, err.message, err.hint)
