"""Namespace and Pod documents → model objects, each problem with its field path."""
from __future__ import annotations

import json
import re
from ipaddress import IPv4Address, ip_address

from ..model.checks import IANA_SVC_NAME, MISSING, DocChecker

from ..model.lab import (CALICO_IP_ANNOTATION, NAMESPACE_NAME_LABEL, Container, ContainerPort, DnsConfig, DnsOption,
                         DnsPolicy, Namespace, Pod, Protocol, frozen_map)
from ..model.security import cap_name
from ..model.yamlsrc import join

POD_KEYS = ("apiVersion", "kind", "metadata", "spec", "status")
POD_SPEC_KEYS = ("nodeName", "containers", "restartPolicy", "terminationGracePeriodSeconds", "hostname", "dnsPolicy",
                 "dnsConfig")
CONTAINER_KEYS = ("name", "command", "args", "ports", "env", "image", "imagePullPolicy", "resources",
                  "securityContext")
# spec.dnsConfig.searches as kube-apiserver checks them since 1.33 (KEP-4427, RelaxedDNSSearchValidation on
# by default): DNS-1123 subdomains whose labels may hold '_' (and start with one), or "." alone
SEARCH_DOMAIN = re.compile(r"_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*")
MAX_DNS_NAMESERVERS = 3        # pkg/apis/core/validation: MaxDNSNameservers
MAX_DNS_SEARCH_PATHS = 32      # MaxDNSSearchPaths
MAX_DNS_SEARCH_CHARS = 2048    # MaxDNSSearchListChars
ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")   # Kubernetes' IsEnvVarName


def load_namespace(raw: dict, check: DocChecker) -> Namespace | None:
    check.known_keys(raw, "", ("apiVersion", "kind", "metadata", "spec", "status"))
    meta = check.mapping(raw.get("metadata", MISSING), "metadata", required=True)
    check.known_keys(meta, "metadata", ("name", "labels", "annotations"))
    name = check.dns_label(meta.get("name", MISSING), "metadata.name", "namespace name")
    labels = check.labels(meta.get("labels", MISSING), "metadata.labels")
    if name is None:
        return None
    labels[NAMESPACE_NAME_LABEL] = name
    return Namespace(name, frozen_map(labels))


def load_pod(raw: dict, check: DocChecker) -> Pod | None:
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
    hostname = check.dns_label(spec.get("hostname", MISSING), "spec.hostname", "hostname", required=False)
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
    policy, dns_config = _load_dns(spec, check)
    if name is None:
        return None
    return Pod(name, namespace, node or "", frozen_map(labels), tuple(containers), pinned, hostname, policy,
               dns_config)


def _load_dns(spec: dict, check: DocChecker) -> tuple[DnsPolicy, DnsConfig | None]:
    """spec.dnsPolicy and spec.dnsConfig, checked as kube-apiserver's validateDNSPolicy and
    validatePodDNSConfig do."""
    text = check.string(spec.get("dnsPolicy", MISSING), "spec.dnsPolicy")
    policy = DnsPolicy.CLUSTER_FIRST
    if text is not None:
        try:
            policy = DnsPolicy(text)
        except ValueError:
            check.error("spec.dnsPolicy", f"unknown dnsPolicy {text!r}",
                        "use one of: " + ", ".join(p.value for p in DnsPolicy))
    path = "spec.dnsConfig"
    raw = check.mapping(spec.get("dnsConfig", MISSING), path)
    check.known_keys(raw, path, ("nameservers", "searches", "options"))
    given = "dnsConfig" in spec and spec["dnsConfig"] is not None
    nameservers: list[str] = []
    listed = check.sequence(raw.get("nameservers", MISSING), f"{path}.nameservers")
    if len(listed) > MAX_DNS_NAMESERVERS:
        check.error(f"{path}.nameservers", f"{len(listed)} nameservers: at most {MAX_DNS_NAMESERVERS} are allowed")
    for i, item in enumerate(listed):
        address = check.string(item, f"{path}.nameservers[{i}]", required=True)
        if address is None:
            continue
        try:
            nameservers.append(str(ip_address(address)))
        except ValueError:
            check.error(f"{path}.nameservers[{i}]", f"{address!r} is not an IP address",
                        "a nameserver is an address, e.g. 172.18.0.10")
    searches: list[str] = []
    listed = check.sequence(raw.get("searches", MISSING), f"{path}.searches")
    for i, item in enumerate(listed):
        domain = check.string(item, f"{path}.searches[{i}]", required=True)
        if domain is None:
            continue
        bare = domain if domain == "." else domain.removesuffix(".")   # a trailing dot is fine
        if bare != "." and (len(bare) > 253 or not SEARCH_DOMAIN.fullmatch(bare)):
            check.error(f"{path}.searches[{i}]", f"{domain!r} is not a search domain",
                        "a DNS-1123 subdomain (lower-case letters, digits, '-', '_' and '.', at most 253 "
                        "characters, e.g. corp.example) or '.'")
            continue
        searches.append(domain)
    if len(listed) > MAX_DNS_SEARCH_PATHS:
        check.error(f"{path}.searches", f"{len(listed)} search domains: at most {MAX_DNS_SEARCH_PATHS} are allowed")
    if len(" ".join(searches)) > MAX_DNS_SEARCH_CHARS:
        check.error(f"{path}.searches", f"the search list is {len(' '.join(searches))} characters long: at most "
                    f"{MAX_DNS_SEARCH_CHARS} are allowed (spaces included)")
    options: list[DnsOption] = []
    for i, item in enumerate(check.sequence(raw.get("options", MISSING), f"{path}.options")):
        entry = check.mapping(item, f"{path}.options[{i}]", required=True)
        check.known_keys(entry, f"{path}.options[{i}]", ("name", "value"))
        name = check.string(entry.get("name", MISSING), f"{path}.options[{i}].name")
        value = check.string(entry.get("value", MISSING), f"{path}.options[{i}].value")
        if entry and not name:
            check.error(f"{path}.options[{i}].name", "is required", "e.g. name: ndots, value: \"2\"")
            continue
        bad = next((c for c in (name or "") + (value or "") if c.isspace() or c == "#"), None) if entry else None
        if bad is not None:
            check.error(f"{path}.options[{i}]", f"{bad!r} cannot be written in a resolv.conf option",
                        "an option is one word, e.g. name: ndots, value: \"2\"")
            continue
        if name:
            options.append(DnsOption(name, value))
    if policy is DnsPolicy.NONE:
        if not given:
            check.error(path, "is required when dnsPolicy is None", "give dnsConfig with at least one nameserver")
        elif not _has_nameservers(raw):
            check.error(f"{path}.nameservers", "at least one nameserver is required when dnsPolicy is None",
                        "e.g. nameservers: [172.18.0.10]")
    if not given:
        return policy, None
    return policy, DnsConfig(tuple(nameservers), tuple(searches), tuple(options))


def _has_nameservers(raw: dict) -> bool:
    value = raw.get("nameservers")
    return isinstance(value, list) and len(value) > 0


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
    env = _load_env(raw.get("env", MISSING), f"{path}.env", check)
    add, drop, privileged = _load_security(raw.get("securityContext", MISSING), f"{path}.securityContext", check)
    if name is None:
        return None
    return Container(name, tuple(argv), tuple(ports), env, add, drop, privileged)


def _load_env(value: object, path: str, check: DocChecker) -> tuple[tuple[str, str], ...]:
    """env: [{name, value}] (a later entry of the same name wins, as in Kubernetes)."""
    out: dict[str, str] = {}
    for i, item in enumerate(check.sequence(value, path)):
        raw = check.mapping(item, f"{path}[{i}]", required=True)
        check.known_keys(raw, f"{path}[{i}]", ("name", "value"))
        name = check.string(raw.get("name", MISSING), f"{path}[{i}].name", required=True)
        text = check.string(raw.get("value", MISSING), f"{path}[{i}].value") or ""
        if name is not None and not ENV_NAME.fullmatch(name):
            check.error(f"{path}[{i}].name", f"{name!r} is not an environment variable name",
                        "letters, digits, '_', '-' and '.', not starting with a digit")
            continue
        if name is not None and ("\0" in text):
            check.error(f"{path}[{i}].value", "contains a NUL character")
            continue
        if name is not None:
            out.pop(name, None)
            out[name] = text
    return tuple(out.items())


def _load_security(value: object, path: str, check: DocChecker) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    raw = check.mapping(value, path)
    check.known_keys(raw, path, ("capabilities", "privileged"))
    privileged = bool(check.boolean(raw.get("privileged", MISSING), f"{path}.privileged"))
    caps = check.mapping(raw.get("capabilities", MISSING), f"{path}.capabilities")
    check.known_keys(caps, f"{path}.capabilities", ("add", "drop"))
    lists: list[tuple[str, ...]] = []
    for key in ("add", "drop"):
        names: list[str] = []
        for i, item in enumerate(check.sequence(caps.get(key, MISSING), f"{path}.capabilities.{key}")):
            text = check.string(item, f"{path}.capabilities.{key}[{i}]", required=True)
            if text is None:
                continue
            name = cap_name(text)
            if name is None:
                check.error(f"{path}.capabilities.{key}[{i}]", f"unknown capability {text!r}",
                            "a Linux capability such as NET_ADMIN, or ALL")
                continue
            names.append(name)
        lists.append(tuple(names))
    return lists[0], lists[1], privileged


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
