"""Lab file → LabFile: every document checked, every problem collected, then one verdict."""
from __future__ import annotations

import os
import stat
from importlib import resources
from ipaddress import IPv4Network

from ..core import ipam
from ..core import backends
from ..core.backends import DEFAULT, OPTION_KEYS, Backend
from ..model.checks import MISSING, DocChecker
from .collected import Collected
from .crosscheck import cross_check
from ..errors import InputError, Problem
from .kubeobjects import load_namespace, load_pod
from ..model.lab import (KUBEADM_API_VERSIONS, LAB_API_VERSION, LabFile, LabSpec, Namespace, Networking, NodeSpec, Pod,
                         frozen_map)
from ..names import MAX_LAB_NAME
from ..model.impairment import LinkImpairment, field_problems, from_values
from ..model.yamlsrc import Document, load_documents

DEFAULT_LAB = "default.yaml"
RESERVED_NODE_NAMES = ("vpc",)
KUBEADM_KINDS_IGNORED = ("InitConfiguration", "JoinConfiguration")


def default_lab_text() -> str:
    return resources.files("netlab").joinpath("data", DEFAULT_LAB).read_text()


MAX_LAB_FILE = 64 << 20   # bytes; a 1,000-pod lab written out is ~180 kB


def load_file(path: str | None) -> LabFile:
    """Load and validate a lab file (None: the packaged default lab). Raises InputError.

    Only a regular file is read: a FIFO or a device could be read forever, and merely opening
    some devices acts on them, so the path is stat'ed before it is opened. The open itself cannot
    wait (O_NONBLOCK: a FIFO's open waits for a writer), and fstat checks what was opened in case
    the path changed in between.
    """
    if path is None:
        return load_text(default_lab_text(), "<default lab>")
    kinds = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
             stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}

    def refused(message: str, hint: str = "give the path of a lab YAML file") -> InputError:
        return InputError([Problem(path, None, "", message, hint)])

    def check_regular(mode: int) -> None:
        if not stat.S_ISREG(mode):
            raise refused(f"is {kinds.get(stat.S_IFMT(mode), 'not a regular file')}, not a lab file: "
                          "only a regular file is read")

    try:
        check_regular(os.stat(path).st_mode)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        with open(fd, closefd=True) as f:
            info = os.fstat(f.fileno())
            check_regular(info.st_mode)
            if info.st_size > MAX_LAB_FILE:
                raise refused(f"is {info.st_size / 2**20:.0f} MiB; a lab file may be at most "
                              f"{MAX_LAB_FILE >> 20} MiB", "split the lab, or use the compact form: spec.scale")
            text = f.read(MAX_LAB_FILE + 1)   # +1: a file that grew since fstat is still caught
            if len(text) > MAX_LAB_FILE:
                raise refused(f"is over {MAX_LAB_FILE >> 20} MiB; a lab file may be at most that")
    except FileNotFoundError:
        raise refused("no such file")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError([Problem(path, None, "", f"cannot read the file: {err}")])
    return load_text(text, path)


def load_text(text: str, source: str) -> LabFile:
    docs, problems = load_documents(text, source)
    if problems:
        raise InputError(problems)
    got = Collected()
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
    lab = cross_check(got, source, problems)   # even after errors: report the rest in the same run
    if problems:
        raise InputError(problems)
    return lab


def _load_document(doc: Document, got: Collected, problems: list[Problem]) -> None:
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
        ns = load_namespace(raw, check)
        if ns:
            got.namespaces.append(ns)
    elif kind == "Pod":
        _expect_api(check, api, "v1")
        pod = load_pod(raw, check)
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
    elif kind in ("Service", "Deployment"):
        _load_workload(kind, api, raw, check, got)
    else:
        check.error("kind", f"unknown kind {kind!r}",
                    "netlab reads ClusterConfiguration, Lab, Namespace, Pod, NetworkPolicy, Service and Deployment")


def _load_workload(kind: str, api: str, raw: dict, check: DocChecker, got: Collected) -> None:
    from .services import load_deployment, load_service
    if kind == "Service":
        _expect_api(check, api, "v1")
        service = load_service(raw, check)
        if service is not None:
            if any(s.key == service.key for s, _ in got.services):
                check.error("metadata.name", f"duplicate Service {service.key}", "Service names must be unique in a namespace")
            else:
                got.services.append((service, check))
    else:
        _expect_api(check, api, "apps/v1")
        loaded = load_deployment(raw, check)
        if loaded is not None:
            if any(d.deployment.key == loaded.deployment.key for d, _ in got.deployments):
                check.error("metadata.name", f"duplicate Deployment {loaded.deployment.key}",
                            "Deployment names must be unique in a namespace")
            else:
                got.deployments.append((loaded, check))


def _expect_api(check: DocChecker, api: str, want: str) -> None:
    if api != want:
        check.error("apiVersion", f"{api!r} is not right for this kind", f"use {want}")


def _load_policy(raw: dict, check: DocChecker):
    from .policy import parse_network_policy
    policy = parse_network_policy(raw, check)
    if policy is not None:
        check.label = f"NetworkPolicy({policy.namespace}/{policy.name})"
    return policy


def _load_cluster(raw: dict, check: DocChecker, got: Collected) -> None:
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


def _load_lab(raw: dict, check: DocChecker, got: Collected) -> LabSpec | None:
    check.known_keys(raw, "", ("apiVersion", "kind", "metadata", "spec"))
    meta = check.mapping(raw.get("metadata", MISSING), "metadata", required=True)
    name = check.dns_label(meta.get("name", MISSING), "metadata.name", "lab name", max_len=MAX_LAB_NAME)
    check.label = f"Lab({name})" if name else "Lab"
    spec = check.mapping(raw.get("spec", MISSING), "spec", required=True)
    check.known_keys(spec, "spec", ("backend", "nodes", "scale", "underlay", "impairments", "kubeProxy", "dns")
                     + tuple(key for _, key in OPTION_KEYS))
    proxy = check.mapping(spec.get("kubeProxy", MISSING), "spec.kubeProxy")
    check.known_keys(proxy, "spec.kubeProxy", ("mode",))
    mode = check.string(proxy.get("mode", MISSING), "spec.kubeProxy.mode")
    if mode not in (None, "nftables", "iptables"):
        check.error("spec.kubeProxy.mode", f"kube-proxy mode {mode!r} is not available",
                    "netlab implements kube-proxy's nftables (the default) and iptables modes: use mode: nftables "
                    "or mode: iptables")
    dns = check.mapping(spec.get("dns", MISSING), "spec.dns")
    check.known_keys(dns, "spec.dns", ("enabled",))
    dns_enabled = check.boolean(dns.get("enabled", MISSING), "spec.dns.enabled")
    backend_text = check.string(spec.get("backend", MISSING), "spec.backend") or DEFAULT.value
    try:
        backend = Backend(backend_text)
    except ValueError:
        check.error("spec.backend", f"unknown backend {backend_text!r}",
                    "use one of: " + ", ".join(b.value for b in Backend))
        backend = DEFAULT   # keeps checking the rest; the error stops the build
    nodes = _load_nodes(spec, check, got)
    on_underlay = backends.kind(backend).pods_on_underlay
    if dns_enabled and on_underlay:
        check.error("spec.dns.enabled", f"backend {backend.value!r} cannot reach the cluster DNS Service: its pods "
                    "sit on the underlay, where kube-proxy's rules do not see them",
                    "use vxlan, host-gw or ipip for a lab with cluster DNS, or remove spec.dns")
    underlay = check.mapping(spec.get("underlay", MISSING), "spec.underlay")
    check.known_keys(underlay, "spec.underlay", ("subnet", "mtu"))
    subnet = check.network(underlay.get("subnet", MISSING), "spec.underlay.subnet", "underlay subnet")
    mtu = check.integer(underlay.get("mtu", MISSING), "spec.underlay.mtu", 1280, 9000)
    options = _load_backend_options(spec, check, backend, tuple(nodes))
    name = name or "invalid"   # keeps checking the rest; the error stops the build
    defaults = LabSpec(name, backend, ())
    return LabSpec(name, backend, tuple(nodes), subnet or defaults.underlay_subnet,
                   mtu or defaults.underlay_mtu, options, _load_impairments(spec, check),
                   kube_proxy_mode=mode if mode == "iptables" else "nftables",
                   dns_enabled=dns_enabled is not False and not on_underlay)


def _load_impairments(spec: dict, check: DocChecker) -> tuple[LinkImpairment, ...]:
    """spec.impairments: [{target, interface?, delay?, jitter?, loss?, rate?}]; targets checked later."""
    out = []
    for i, raw in enumerate(check.sequence(spec.get("impairments", MISSING), "spec.impairments")):
        path = f"spec.impairments[{i}]"
        entry = check.mapping(raw, path, required=True)
        if not entry:
            continue
        target = check.string(entry.get("target", MISSING), f"{path}.target", required=True)
        interface = check.string(entry.get("interface", MISSING), f"{path}.interface")
        values = {k: v for k, v in entry.items() if k not in ("target", "interface")}
        problems = field_problems(values)
        for key, message, hint in problems:
            check.error(f"{path}.{key}", message, hint)
        if not values and not problems:
            check.error(path, "no impairment given", "add delay, jitter, loss or rate, e.g. delay: 10ms")
        if target and not problems and values:
            out.append(LinkImpairment(target, interface, from_values(values), i))
    return tuple(out)


def _load_backend_options(spec: dict, check: DocChecker, backend: Backend, nodes: tuple[NodeSpec, ...]) -> object:
    """Every backend's spec.KEY is checked (each backend parses its own, and checks it against the
    lab's nodes where it names some); the lab's backend's are kept (their defaults when absent)."""
    kept = None
    for owner, key in OPTION_KEYS:
        path = f"spec.{key}"
        raw = check.mapping(spec.get(key, MISSING), path)
        if not raw and owner is not backend:
            continue   # nothing of another backend's to check
        schema = backends.options(owner)
        check.known_keys(raw, path, schema.fields)
        if raw and owner is not backend:
            check.error(path, f"{schema.key} options given for backend {backend.value!r}",
                        f"remove {path} or use backend: {owner.value}")
        options = schema.parse(raw, check, path)
        if raw and schema.check_nodes is not None:
            options = schema.check_nodes(options, nodes, check, path)
        if owner is backend:
            kept = options
    return kept


def _load_nodes(spec: dict, check: DocChecker, got: Collected) -> list[NodeSpec]:
    nodes: list[NodeSpec] = []
    scale = check.mapping(spec.get("scale", MISSING), "spec.scale")
    listed = check.sequence(spec.get("nodes", MISSING), "spec.nodes", required=not scale)
    for i, item in enumerate(listed):
        path = f"spec.nodes[{i}]"
        entry = check.mapping(item, path, required=True)
        check.known_keys(entry, path, ("name", "rack", "podCIDR", "labels"))
        node_labels = check.labels(entry.get("labels", MISSING), f"{path}.labels")
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
        nodes.append(NodeSpec(name, rack, cidr, frozen_map(node_labels)))
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
        namespace = check.dns_label(scale.get("namespace", MISSING), "spec.scale.namespace", "namespace",
                                    required=False)
        ports: list[int] = []
        for i, item in enumerate(check.sequence(scale.get("ports", MISSING), "spec.scale.ports")):
            port = check.integer(item, f"spec.scale.ports[{i}]", 1, 65535)
            if port is None:
                continue
            if port in ports:
                check.error(f"spec.scale.ports[{i}]", f"duplicate port {port}", "list each port once")
                continue
            ports.append(port)
        got.scale = {"nodes": count, "podsPerNode": per_node, "namespace": namespace or "default",
                     "ports": ports}
    return nodes
