"""Lab file → LabFile: every document checked, every problem collected, then one verdict."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from . import ipam
from .state import MAX_LAB_NAME   # namespace names and interface aliases stay short
from .checks import IANA_SVC_NAME, MISSING, DocChecker
from .errors import InputError, Problem
from .model import (CALICO_IP_ANNOTATION, KUBEADM_API_VERSIONS, LAB_API_VERSION, NAMESPACE_NAME_LABEL,
                    Backend, Container, ContainerPort, IpvlanMode, IpvlanOptions, LabFile, LabSpec, Namespace,
                    Networking, NodeSpec, Pod, Protocol, VxlanOptions, frozen_map)
from .yamlsrc import Document, join, load_documents

DEFAULT_LAB = "default.yaml"
RESERVED_NODE_NAMES = ("vpc",)
POD_KEYS = ("apiVersion", "kind", "metadata", "spec", "status")
POD_SPEC_KEYS = ("nodeName", "containers", "restartPolicy", "terminationGracePeriodSeconds")
CONTAINER_KEYS = ("name", "command", "args", "ports", "env", "image", "imagePullPolicy", "resources")
KUBEADM_KINDS_IGNORED = ("InitConfiguration", "JoinConfiguration")


@dataclass
class _Collected:
    networking: Networking | None = None
    lab: LabSpec | None = None
    namespaces: list[Namespace] = field(default_factory=list)
    pods: list[tuple[Pod, DocChecker]] = field(default_factory=list)
    policies: list = field(default_factory=list)   # (NetworkPolicy, DocChecker)
    lab_check: DocChecker | None = None
    node_paths: dict[str, str] = field(default_factory=dict)
    scale: dict | None = None  # spec.scale: the compact form's generated nodes and pods


def default_lab_text() -> str:
    return resources.files("netlab").joinpath("data", DEFAULT_LAB).read_text()


def load_file(path: str | None) -> LabFile:
    """Load and validate a lab file (None: the packaged default lab). Raises InputError."""
    if path is None:
        return load_text(default_lab_text(), "<default lab>")
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise InputError([Problem(path, None, "", "no such file", "give the path of a lab YAML file")])
    except (OSError, UnicodeDecodeError) as err:
        raise InputError([Problem(path, None, "", f"cannot read the file: {err}")])
    return load_text(text, path)


def load_text(text: str, source: str) -> LabFile:
    docs, problems = load_documents(text, source)
    if problems:
        raise InputError(problems)
    got = _Collected()
    for doc in docs:
        _load_document(doc, got, problems)
    if got.lab_check is None:
        problems.append(Problem(source, None, "", "the file has no Lab document",
                                f"add a document with apiVersion: {LAB_API_VERSION}, kind: Lab"))
    if got.networking is None:
        problems.append(Problem(source, None, "", "the file has no ClusterConfiguration with networking.podSubnet",
                                f"add a document with apiVersion: {KUBEADM_API_VERSIONS[0]}, "
                                "kind: ClusterConfiguration, networking.podSubnet"))
    if got.lab is None or got.networking is None:
        raise InputError(problems)
    lab = _cross_check(got, source, problems)   # even after errors: report the rest in the same run
    if problems:
        raise InputError(problems)
    return lab


def _load_document(doc: Document, got: _Collected, problems: list[Problem]) -> None:
    check = DocChecker(doc, problems)
    raw = check.mapping(doc.value, "")
    if not raw:
        if doc.value not in (None, {}):
            return
        check.error("", "empty document", "remove it or give it apiVersion and kind")
        return
    api = check.string(raw.get("apiVersion", MISSING), "apiVersion", required=True)
    kind = check.string(raw.get("kind", MISSING), "kind", required=True)
    if api is None or kind is None:
        return
    if kind == "ClusterConfiguration" or api in KUBEADM_API_VERSIONS:
        if api not in KUBEADM_API_VERSIONS:
            check.error("apiVersion", f"{api!r} is not a kubeadm API version",
                        "use " + " or ".join(KUBEADM_API_VERSIONS))
        elif kind == "ClusterConfiguration":
            _load_cluster(raw, check, got)
        elif kind not in KUBEADM_KINDS_IGNORED:
            check.error("kind", f"unknown kubeadm kind {kind!r}", "use ClusterConfiguration")
    elif kind == "Lab":
        if api != LAB_API_VERSION:
            check.error("apiVersion", f"{api!r} is not the Lab API version", f"use {LAB_API_VERSION}")
        if got.lab is not None or got.lab_check is not None:
            check.error("", "a second Lab document", "a file describes one lab: keep one Lab document")
            return
        got.lab_check = check
        got.lab = _load_lab(raw, check, got)
    elif kind == "Namespace":
        _expect_api(check, api, "v1")
        ns = _load_namespace(raw, check)
        if ns:
            got.namespaces.append(ns)
    elif kind == "Pod":
        _expect_api(check, api, "v1")
        pod = _load_pod(raw, check)
        if pod:
            got.pods.append((pod, check))
    elif kind == "NetworkPolicy":
        _expect_api(check, api, "networking.k8s.io/v1")
        policy = _load_policy(raw, check)
        if policy is not None:
            if any(p.key == policy.key for p, _ in got.policies):
                check.error("metadata.name", f"duplicate NetworkPolicy {policy.key}",
                            "policy names must be unique in a namespace")
            else:
                got.policies.append((policy, check))
    else:
        check.error("kind", f"unknown kind {kind!r}",
                    "netlab reads ClusterConfiguration, Lab, Namespace, Pod and NetworkPolicy")


def _expect_api(check: DocChecker, api: str, want: str) -> None:
    if api != want:
        check.error("apiVersion", f"{api!r} is not right for this kind", f"use {want}")


def _load_policy(raw: dict, check: DocChecker):
    from .policy.load import parse_network_policy
    policy = parse_network_policy(raw, check)
    if policy is not None:
        check.label = f"NetworkPolicy({policy.namespace}/{policy.name})"
    return policy


def _load_cluster(raw: dict, check: DocChecker, got: _Collected) -> None:
    if got.networking is not None:
        check.error("", "a second ClusterConfiguration", "keep one ClusterConfiguration document")
        return
    net = check.mapping(raw.get("networking", MISSING), "networking", required=True)
    check.known_keys(net, "networking", ("podSubnet", "serviceSubnet", "dnsDomain"))
    pod = check.network(net.get("podSubnet", MISSING), "networking.podSubnet", "podSubnet", required=True)
    svc = check.network(net.get("serviceSubnet", MISSING), "networking.serviceSubnet", "serviceSubnet")
    dns = check.string(net.get("dnsDomain", MISSING), "networking.dnsDomain")
    if pod is not None and pod.prefixlen > ipam.NODE_MASK:
        check.error("networking.podSubnet", f"podSubnet {pod} is smaller than a node's /{ipam.NODE_MASK}",
                    f"kubeadm needs a podSubnet prefix of /{ipam.NODE_MASK} or shorter, e.g. /16")
        pod = None
    if dns is not None and not all(part and len(part) <= 63 for part in dns.split(".")):
        check.error("networking.dnsDomain", f"{dns!r} is not a DNS domain", "e.g. cluster.local")
    if pod is None:
        got.networking = Networking(IPv4Network("0.0.0.0/32"))  # placeholder; the error is recorded
        return
    defaults = Networking(pod)
    got.networking = Networking(pod, svc or defaults.service_subnet, dns or defaults.dns_domain)


def _load_lab(raw: dict, check: DocChecker, got: _Collected) -> LabSpec | None:
    check.known_keys(raw, "", ("apiVersion", "kind", "metadata", "spec"))
    meta = check.mapping(raw.get("metadata", MISSING), "metadata", required=True)
    name = check.dns_label(meta.get("name", MISSING), "metadata.name", "lab name", max_len=MAX_LAB_NAME)
    check.label = f"Lab({name})" if name else "Lab"
    spec = check.mapping(raw.get("spec", MISSING), "spec", required=True)
    check.known_keys(spec, "spec", ("backend", "nodes", "scale", "underlay", "vxlan", "ipvlan"))
    backend_text = check.string(spec.get("backend", MISSING), "spec.backend") or Backend.VXLAN.value
    try:
        backend = Backend(backend_text)
    except ValueError:
        check.error("spec.backend", f"unknown backend {backend_text!r}",
                    "use one of: " + ", ".join(b.value for b in Backend))
        backend = Backend.VXLAN   # keeps checking the rest; the error stops the build
    nodes = _load_nodes(spec, check, got)
    underlay = check.mapping(spec.get("underlay", MISSING), "spec.underlay")
    check.known_keys(underlay, "spec.underlay", ("subnet", "mtu"))
    subnet = check.network(underlay.get("subnet", MISSING), "spec.underlay.subnet", "underlay subnet")
    mtu = check.integer(underlay.get("mtu", MISSING), "spec.underlay.mtu", 1280, 9000)
    vx = check.mapping(spec.get("vxlan", MISSING), "spec.vxlan")
    check.known_keys(vx, "spec.vxlan", ("vni", "port", "directRouting"))
    vxlan = VxlanOptions(
        vni=check.integer(vx.get("vni", MISSING), "spec.vxlan.vni", 1, (1 << 24) - 1) or 1,
        port=check.integer(vx.get("port", MISSING), "spec.vxlan.port", 1, 65535) or 8472,
        direct_routing=bool(check.boolean(vx.get("directRouting", MISSING), "spec.vxlan.directRouting")))
    if vx and backend is not Backend.VXLAN:
        check.error("spec.vxlan", f"vxlan options given for backend {backend.value!r}",
                    "remove spec.vxlan or use backend: vxlan")
    ipvlan = _load_ipvlan(spec, check, backend)
    name = name or "invalid"   # keeps checking the rest; the error stops the build
    defaults = LabSpec(name, backend, ())
    return LabSpec(name, backend, tuple(nodes), subnet or defaults.underlay_subnet,
                   mtu or defaults.underlay_mtu, vxlan, ipvlan)


def _load_ipvlan(spec: dict, check: DocChecker, backend: Backend) -> IpvlanOptions:
    raw = check.mapping(spec.get("ipvlan", MISSING), "spec.ipvlan")
    check.known_keys(raw, "spec.ipvlan", ("mode",))
    if raw and backend is not Backend.IPVLAN:
        check.error("spec.ipvlan", f"ipvlan options given for backend {backend.value!r}",
                    "remove spec.ipvlan or use backend: ipvlan")
    text = check.string(raw.get("mode", MISSING), "spec.ipvlan.mode")
    if text is None:
        return IpvlanOptions()
    try:
        return IpvlanOptions(IpvlanMode(text))
    except ValueError:
        check.error("spec.ipvlan.mode", f"unknown ipvlan mode {text!r}",
                    "use one of: " + ", ".join(m.value for m in IpvlanMode))
        return IpvlanOptions()


def _load_nodes(spec: dict, check: DocChecker, got: _Collected) -> list[NodeSpec]:
    nodes: list[NodeSpec] = []
    scale = check.mapping(spec.get("scale", MISSING), "spec.scale")
    listed = check.sequence(spec.get("nodes", MISSING), "spec.nodes", required=not scale)
    for i, item in enumerate(listed):
        path = f"spec.nodes[{i}]"
        entry = check.mapping(item, path, required=True)
        check.known_keys(entry, path, ("name", "rack", "podCIDR"))
        name = check.dns_label(entry.get("name", MISSING), f"{path}.name", "node name")
        rack = check.dns_label(entry.get("rack", MISSING), f"{path}.rack", "rack name", required=False)
        cidr = check.network(entry.get("podCIDR", MISSING), f"{path}.podCIDR", "podCIDR")
        if name in RESERVED_NODE_NAMES:
            check.error(f"{path}.name", f"node name {name!r} is reserved for the lab's underlay",
                        "choose another name")
            continue
        if name is None:
            continue
        if name in got.node_paths:
            check.error(f"{path}.name", f"duplicate node name {name!r} (first at {got.node_paths[name]})",
                        "node names must be unique")
            continue
        got.node_paths[name] = path
        nodes.append(NodeSpec(name, rack, cidr))
    if scale:
        check.known_keys(scale, "spec.scale", ("nodes", "podsPerNode", "namespace", "ports"))
        count = check.integer(scale.get("nodes", MISSING), "spec.scale.nodes", 1, 4096) or 0
        per_node = check.integer(scale.get("podsPerNode", MISSING), "spec.scale.podsPerNode", 0, 253) or 0
        if "nodes" not in scale:
            check.error("spec.scale.nodes", "is required", "e.g. scale: {nodes: 10, podsPerNode: 100}")
        for n in range(1, count + 1):
            name = f"node-{n}"
            if name in got.node_paths:
                check.error("spec.scale.nodes", f"generated node {name!r} clashes with a listed node",
                            "rename the listed node")
                continue
            got.node_paths[name] = "spec.scale"
            nodes.append(NodeSpec(name))
        got.scale = {"nodes": count, "podsPerNode": per_node, "namespace": scale.get("namespace"),
                     "ports": scale.get("ports")}
    return nodes


def _load_namespace(raw: dict, check: DocChecker) -> Namespace | None:
    check.known_keys(raw, "", ("apiVersion", "kind", "metadata", "spec", "status"))
    meta = check.mapping(raw.get("metadata", MISSING), "metadata", required=True)
    check.known_keys(meta, "metadata", ("name", "labels", "annotations"))
    name = check.dns_label(meta.get("name", MISSING), "metadata.name", "namespace name")
    labels = check.labels(meta.get("labels", MISSING), "metadata.labels")
    if name is None:
        return None
    labels[NAMESPACE_NAME_LABEL] = name
    return Namespace(name, frozen_map(labels))


def _load_pod(raw: dict, check: DocChecker) -> Pod | None:
    check.known_keys(raw, "", POD_KEYS)
    meta = check.mapping(raw.get("metadata", MISSING), "metadata", required=True)
    check.known_keys(meta, "metadata", ("name", "namespace", "labels", "annotations"))
    name = check.dns_label(meta.get("name", MISSING), "metadata.name", "pod name")
    namespace = check.dns_label(meta.get("namespace", MISSING), "metadata.namespace", "namespace",
                                required=False) or "default"
    check.label = f"Pod({namespace}/{name})" if name else "Pod"
    labels = check.labels(meta.get("labels", MISSING), "metadata.labels")
    annotations = check.mapping(meta.get("annotations", MISSING), "metadata.annotations")
    pinned = _pinned_ip(annotations, check)
    spec = check.mapping(raw.get("spec", MISSING), "spec", required=True)
    check.known_keys(spec, "spec", POD_SPEC_KEYS)
    node = check.dns_label(spec.get("nodeName", MISSING), "spec.nodeName", "node name", required=False)
    containers: list[Container] = []
    seen: set[str] = set()
    ports_seen: dict[tuple[int, str], str] = {}
    for i, item in enumerate(check.sequence(spec.get("containers", MISSING), "spec.containers")):
        container = _load_container(item, f"spec.containers[{i}]", check, ports_seen)
        if container is None:
            continue
        if container.name in seen:
            check.error(f"spec.containers[{i}].name", f"duplicate container name {container.name!r}",
                        "container names must be unique within a pod")
            continue
        seen.add(container.name)
        containers.append(container)
    if name is None:
        return None
    return Pod(name, namespace, node or "", frozen_map(labels), tuple(containers), pinned)


def _pinned_ip(annotations: dict, check: DocChecker) -> IPv4Address | None:
    if CALICO_IP_ANNOTATION not in annotations:
        return None
    path = join("metadata.annotations", CALICO_IP_ANNOTATION)
    value = annotations[CALICO_IP_ANNOTATION]
    try:
        listed = json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError:
        listed = None
    if not isinstance(listed, list) or len(listed) != 1:
        check.error(path, f"expected a JSON list with one address, got {value!r}",
                    """write it as '["172.16.0.10"]'""")
        return None
    return check.address(listed[0], path, "pinned pod IP")


def _load_container(item: object, path: str, check: DocChecker,
                    ports_seen: dict[tuple[int, str], str]) -> Container | None:
    raw = check.mapping(item, path, required=True)
    check.known_keys(raw, path, CONTAINER_KEYS)
    name = check.dns_label(raw.get("name", MISSING), f"{path}.name", "container name")
    argv: list[str] = []
    for key in ("command", "args"):
        for j, word in enumerate(check.sequence(raw.get(key, MISSING), f"{path}.{key}")):
            text = check.string(word, f"{path}.{key}[{j}]", required=True)
            if text is not None:
                argv.append(text)
    if "args" in raw and "command" not in raw:
        check.error(f"{path}.args", "args without command", "netlab has no images: give the command too")
    ports: list[ContainerPort] = []
    for j, entry in enumerate(check.sequence(raw.get("ports", MISSING), f"{path}.ports")):
        port = _load_port(entry, f"{path}.ports[{j}]", check)
        if port is None:
            continue
        where = f"{path}.ports[{j}]"
        clash = ports_seen.get((port.container_port, port.protocol.value))
        if clash:
            check.error(f"{where}.containerPort", f"port {port.container_port}/{port.protocol.value} is "
                        f"already declared at {clash}", "containers of a pod share one network namespace")
            continue
        ports_seen[(port.container_port, port.protocol.value)] = where
        ports.append(port)
    if not argv and not ports and name is not None:
        check.error(path, f"container {name!r} has neither command nor ports",
                    "give a command to run, or ports for netlab's built-in responder")
    if name is None:
        return None
    return Container(name, tuple(argv), tuple(ports))


def _load_port(entry: object, path: str, check: DocChecker) -> ContainerPort | None:
    raw = check.mapping(entry, path, required=True)
    check.known_keys(raw, path, ("containerPort", "protocol", "name", "hostPort", "hostIP"))
    number = check.integer(raw.get("containerPort", MISSING), f"{path}.containerPort", 1, 65535)
    if "containerPort" not in raw:
        check.error(f"{path}.containerPort", "is required", "e.g. containerPort: 80")
    proto_text = check.string(raw.get("protocol", MISSING), f"{path}.protocol") or "TCP"
    try:
        protocol = Protocol(proto_text)
    except ValueError:
        check.error(f"{path}.protocol", f"unknown protocol {proto_text!r}", "use TCP, UDP or SCTP")
        return None
    name = check.string(raw.get("name", MISSING), f"{path}.name")
    if name is not None and (len(name) > 15 or not IANA_SVC_NAME.match(name) or name.isdigit()):
        check.error(f"{path}.name", f"port name {name!r} is not an IANA service name",
                    "at most 15 lower-case letters, digits and '-', with at least one letter")
        name = None
    if number is None:
        return None
    return ContainerPort(number, protocol, name)


def _cross_check(got: _Collected, source: str, problems: list[Problem]) -> LabFile:
    """Checks across documents: references, duplicates, pins, capacity."""
    assert got.lab is not None and got.networking is not None and got.lab_check is not None
    lab, net, lab_check = got.lab, got.networking, got.lab_check
    nodes = {node.name: node for node in lab.nodes}
    if not nodes:
        lab_check.error("spec.nodes", "the lab has no nodes", "list at least one node")
    namespaces: dict[str, Namespace] = {}
    for ns in got.namespaces:
        if ns.name in namespaces:
            problems.append(Problem(source, None, f"Namespace({ns.name})", "duplicate namespace"))
        namespaces[ns.name] = ns
    networking_ok = net.pod_subnet.prefixlen <= ipam.NODE_MASK   # else a placeholder after an error
    if networking_ok:
        _check_underlay(lab, net, lab_check)
        _check_pinned_cidrs(lab, net, lab_check)
    _check_racks(lab, got, lab_check)
    pods: list[Pod] = []
    seen: set[str] = set()
    order = list(nodes)
    for i, (pod, check) in enumerate(got.pods):
        if pod.key in seen:
            check.error("metadata.name", f"duplicate pod {pod.key}", "pod names must be unique in a namespace")
            continue
        seen.add(pod.key)
        node = pod.node
        if not node:
            node = order[len(pods) % len(order)] if order else ""  # netlab's scheduler: round robin
        elif node not in nodes:
            check.error("spec.nodeName", f"unknown node {node!r}",
                        "use one of: " + ", ".join(order) if order else "declare the node in the Lab")
            continue
        if pod.namespace not in namespaces:
            namespaces[pod.namespace] = Namespace(pod.namespace, frozen_map({NAMESPACE_NAME_LABEL: pod.namespace}))
        pods.append(Pod(pod.name, pod.namespace, node, pod.labels, pod.containers, pod.pinned_ip))
    if got.scale:
        count, per_node = got.scale["nodes"], got.scale["podsPerNode"]
        ns_name = str(got.scale["namespace"] or "default")
        ports = tuple(ContainerPort(p) for p in got.scale["ports"] or () if isinstance(p, int))
        containers = (Container("responder", (), ports),) if ports else ()
        namespaces.setdefault(ns_name, Namespace(ns_name, frozen_map({NAMESPACE_NAME_LABEL: ns_name})))
        for n in range(1, count + 1):
            for j in range(1, per_node + 1):
                pods.append(Pod(f"node-{n}-p{j}", ns_name, f"node-{n}",
                                frozen_map({"app": "scale", "node": f"node-{n}"}), containers))
    if "default" not in namespaces:
        namespaces["default"] = Namespace("default", frozen_map({NAMESPACE_NAME_LABEL: "default"}))
    labfile = LabFile(source, net, lab, tuple(namespaces.values()), tuple(pods), tuple(p for p, _ in got.policies))
    if problems or not networking_ok:
        return labfile
    _check_pinned_ips(labfile, got, problems)
    if problems:
        return labfile
    _check_interface_names(labfile, got)
    try:
        ipam.allocate(labfile)
    except ipam.AllocationError as err:
        checks = {pod.key: check for pod, check in got.pods}
        if err.kind == "pod" and err.subject in checks:
            checks[err.subject].error("spec.nodeName", err.message, err.hint)
        elif err.kind == "node":
            lab_check.error(got.node_paths.get(err.subject, "spec.nodes"), err.message, err.hint)
        else:
            lab_check.error("spec", err.message, err.hint)
    return labfile


def _check_interface_names(lab: LabFile, got: _Collected) -> None:
    """Host-side veth names are hashes (as the bridge plugin's): refuse the rare clash on one node."""
    from .plan import pod_host_veth
    checks = {pod.key: check for pod, check in got.pods}
    seen: dict[tuple[str, str], str] = {}
    for pod in lab.pods:
        ifname = pod_host_veth(lab.lab.name, pod)
        other = seen.setdefault((pod.node, ifname), pod.key)
        if other != pod.key and pod.key in checks:
            checks[pod.key].error("metadata.name", f"pods {other} and {pod.key} on node {pod.node!r} hash to "
                                  f"the same interface name {ifname}", "rename one of them")


def _check_underlay(lab: LabSpec, net: Networking, check: DocChecker) -> None:
    for what, other in (("podSubnet", net.pod_subnet), ("serviceSubnet", net.service_subnet)):
        if lab.underlay_subnet.overlaps(other):
            check.error("spec.underlay.subnet", f"underlay subnet {lab.underlay_subnet} overlaps {what} {other}",
                        "choose an underlay subnet apart from the cluster's subnets")


# Backends whose nodes (or pods) must share one L2 segment; each rack is its own segment.
L2_BACKENDS = {
    Backend.HOST_GW: ("host-gw needs L2 adjacency", "use backend vxlan, or vxlan with directRouting: true"),
    Backend.MACVLAN: ("macvlan needs one L2 segment for all pods", "put every node in one rack, or use backend vxlan"),
    Backend.IPVLAN: ("ipvlan needs one L2 segment for all nodes", "put every node in one rack, or use backend vxlan"),
}


def _check_racks(lab: LabSpec, got: _Collected, check: DocChecker) -> None:
    """Refuse, before anything is built, a backend that cannot cross the VPC router between racks."""
    if lab.backend not in L2_BACKENDS or not lab.nodes:
        return
    rack_of = {node.name: node.rack or ipam.DEFAULT_RACK for node in lab.nodes}
    first = lab.nodes[0]
    other = next((n for n in lab.nodes if rack_of[n.name] != rack_of[first.name]), None)
    if other is None:
        return
    need, hint = L2_BACKENDS[lab.backend]
    node_path = got.node_paths.get(other.name, "spec.nodes")
    check.error(f"{node_path}.rack" if other.rack else node_path,
                f"{need}: nodes {first.name} and {other.name} are in different racks "
                f"({rack_of[first.name]}, {rack_of[other.name]})", hint)


def _check_pinned_cidrs(lab: LabSpec, net: Networking, check: DocChecker) -> None:
    seen: dict[IPv4Network, str] = {}
    for i, node in enumerate(lab.nodes):
        cidr = node.pod_cidr
        if cidr is None:
            continue
        path = f"spec.nodes[{i}].podCIDR"
        if cidr.prefixlen != ipam.NODE_MASK:
            check.error(path, f"podCIDR {cidr} is not a /{ipam.NODE_MASK}", "node CIDRs are /24s of podSubnet")
        elif not cidr.subnet_of(net.pod_subnet):
            check.error(path, f"podCIDR {cidr} is outside podSubnet {net.pod_subnet}",
                        "pin a /24 inside podSubnet")
        elif cidr.overlaps(net.service_subnet):
            check.error(path, f"podCIDR {cidr} overlaps serviceSubnet {net.service_subnet}",
                        "pin a /24 apart from serviceSubnet")
        elif cidr in seen:
            check.error(path, f"podCIDR {cidr} is already pinned to node {seen[cidr]!r}",
                        "each node needs its own /24")
        else:
            seen[cidr] = node.name


def _check_pinned_ips(lab: LabFile, got: _Collected, problems: list[Problem]) -> None:
    checks = {pod.key: check for pod, check in got.pods}
    path = join("metadata.annotations", CALICO_IP_ANNOTATION)
    try:
        cidrs = ipam.allocate_node_cidrs(lab)
    except ipam.AllocationError:
        return  # reported by the full allocation
    owners: dict[IPv4Address, str] = {}
    for pod in lab.pods:
        ip = pod.pinned_ip
        if ip is None:
            continue
        cidr = cidrs[pod.node]
        check = checks[pod.key]
        if ip not in cidr:
            check.error(path, f"pinned IP {ip} is outside {cidr}, the CIDR of node {pod.node!r}",
                        f"pick an address in {cidr}, or pin the node's podCIDR")
        elif ip in (cidr.network_address, cidr.network_address + 1, cidr.broadcast_address):
            check.error(path, f"pinned IP {ip} is reserved in {cidr}",
                        "the network address, the gateway (.1) and broadcast are taken")
        elif ip in owners:
            check.error(path, f"pinned IP {ip} is already pinned to pod {owners[ip]}", "pod IPs must be unique")
        else:
            owners[ip] = pod.key
