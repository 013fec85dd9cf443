"""NetworkPolicy documents → NetworkPolicy, every problem recorded with its field path.

Validation follows the API server's (pkg/apis/networking/validation): a peer needs at
least one field and ipBlock stands alone, except entries are strict subsets of cidr,
endPort needs a numeric port not above it, In/NotIn need values and Exists/DoesNotExist
forbid them. netlab adds one restriction of its own: IPv4 only.
"""
from __future__ import annotations

from ..model.checks import IANA_SVC_NAME, LABEL_NAME, MISSING, DocChecker, type_name
from ..model.lab import Protocol, frozen_map
from ..model.policy import (IPBlock, LabelRequirement, LabelSelector, NetworkPolicy, Operator, Peer, PolicyPort,
                            PolicyType, Rule, default_policy_types)

POLICY_KEYS = ("apiVersion", "kind", "metadata", "spec")
METADATA_KEYS = ("name", "namespace", "labels", "annotations")
SPEC_KEYS = ("podSelector", "ingress", "egress", "policyTypes")
SELECTOR_KEYS = ("matchLabels", "matchExpressions")
EXPRESSION_KEYS = ("key", "operator", "values")
PEER_KEYS = ("podSelector", "namespaceSelector", "ipBlock")
PORT_KEYS = ("protocol", "port", "endPort")
MAX_LABEL_PART = 63


def parse_network_policy(raw: dict, check: DocChecker) -> NetworkPolicy | None:
    """The policy, or None when any field was wrong (the problems are in `check`)."""
    errors_before = check.errors
    meta = check.mapping(raw.get("metadata", MISSING), "metadata", required=True)
    name = check.dns_label(meta.get("name", MISSING), "metadata.name", "policy name")
    namespace = check.dns_label(meta.get("namespace", MISSING), "metadata.namespace", "namespace",
                                required=False) or "default"
    check.label = f"NetworkPolicy({namespace}/{name})" if name else "NetworkPolicy"
    check.known_keys(raw, "", POLICY_KEYS)
    check.known_keys(meta, "metadata", METADATA_KEYS)
    check.labels(meta.get("labels", MISSING), "metadata.labels")
    check.mapping(meta.get("annotations", MISSING), "metadata.annotations")
    spec = check.mapping(raw.get("spec", MISSING), "spec", required=True)
    check.known_keys(spec, "spec", SPEC_KEYS)
    # podSelector is a struct in the API, not a pointer: left out it is {} (every pod)
    pod_selector = _selector(spec.get("podSelector", MISSING), "spec.podSelector", check) or LabelSelector()
    ingress = _rules(spec.get("ingress", MISSING), "spec.ingress", "from", check)
    egress = _rules(spec.get("egress", MISSING), "spec.egress", "to", check)
    explicit = _policy_types(spec.get("policyTypes", MISSING), "spec.policyTypes", check)
    if name is None or check.errors > errors_before:
        return None
    return NetworkPolicy(name, namespace, pod_selector, ingress, egress, default_policy_types(explicit, egress))


def _selector(value: object, path: str, check: DocChecker) -> LabelSelector | None:
    if value is MISSING or value is None:
        return None
    raw = check.mapping(value, path)
    check.known_keys(raw, path, SELECTOR_KEYS)
    labels = check.labels(raw.get("matchLabels", MISSING), f"{path}.matchLabels")
    requirements: list[LabelRequirement] = []
    listed = check.sequence(raw.get("matchExpressions", MISSING), f"{path}.matchExpressions")
    for i, item in enumerate(listed):
        requirement = _requirement(item, f"{path}.matchExpressions[{i}]", check)
        if requirement is not None:
            requirements.append(requirement)
    return LabelSelector(frozen_map(labels), tuple(requirements))


def _requirement(item: object, path: str, check: DocChecker) -> LabelRequirement | None:
    raw = check.mapping(item, path, required=True)
    check.known_keys(raw, path, EXPRESSION_KEYS)
    key = check.string(raw.get("key", MISSING), f"{path}.key", required=True)
    if key is not None and not _valid_label_key(key):
        check.error(f"{path}.key", f"{key!r} is not a valid label key",
                    "an optional DNS prefix and '/', then at most 63 letters, digits, '-', '_', '.'")
        key = None
    op_text = check.string(raw.get("operator", MISSING), f"{path}.operator", required=True)
    operator = None
    if op_text is not None:
        try:
            operator = Operator(op_text)
        except ValueError:
            check.error(f"{path}.operator", f"unknown operator {op_text!r}",
                        "use one of: " + ", ".join(op.value for op in Operator))
    values = _values(raw.get("values", MISSING), f"{path}.values", check)
    if operator in (Operator.IN, Operator.NOT_IN) and not values:
        check.error(f"{path}.values", f"operator {operator.value} needs values", "list at least one value")
        return None
    if operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST) and values:
        check.error(f"{path}.values", f"operator {operator.value} takes no values", "remove values")
        return None
    if key is None or operator is None or values is None:
        return None
    return LabelRequirement(key, operator, values)


def _values(value: object, path: str, check: DocChecker) -> tuple[str, ...] | None:
    out: list[str] = []
    ok = True
    for j, item in enumerate(check.sequence(value, path)):
        text = check.string(item, f"{path}[{j}]", required=True)
        if text is None:
            ok = False
        elif text and (len(text) > MAX_LABEL_PART or not LABEL_NAME.match(text)):
            check.error(f"{path}[{j}]", f"{text!r} is not a valid label value",
                        "at most 63 characters: letters, digits, '-', '_', '.'")
            ok = False
        else:
            out.append(text)
    return tuple(out) if ok else None


def _valid_label_key(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    return (bool(LABEL_NAME.match(name)) and len(name) <= MAX_LABEL_PART
            and (not prefix or len(prefix) <= 253))


def _rules(value: object, path: str, peer_key: str, check: DocChecker) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    for i, item in enumerate(check.sequence(value, path)):
        rule_path = f"{path}[{i}]"
        raw = check.mapping(item, rule_path, required=True)
        check.known_keys(raw, rule_path, (peer_key, "ports"))
        peers = [_peer(p, f"{rule_path}.{peer_key}[{j}]", check)
                 for j, p in enumerate(check.sequence(raw.get(peer_key, MISSING), f"{rule_path}.{peer_key}"))]
        ports = [_port(p, f"{rule_path}.ports[{j}]", check)
                 for j, p in enumerate(check.sequence(raw.get("ports", MISSING), f"{rule_path}.ports"))]
        rules.append(Rule(tuple(p for p in peers if p is not None), tuple(p for p in ports if p is not None)))
    return tuple(rules)


def _peer(item: object, path: str, check: DocChecker) -> Peer | None:
    raw = check.mapping(item, path, required=True)
    check.known_keys(raw, path, PEER_KEYS)
    given = [key for key in PEER_KEYS if raw.get(key) is not None]
    if not given:
        check.error(path, "a peer needs podSelector, namespaceSelector or ipBlock",
                    "to allow every peer, leave out the whole from/to list")
        return None
    if "ipBlock" in given and len(given) > 1:
        check.error(path, "ipBlock cannot be combined with podSelector or namespaceSelector",
                    "give ipBlock its own list entry")
        return None
    if "ipBlock" in given:
        block = _ip_block(raw["ipBlock"], f"{path}.ipBlock", check)
        return Peer(ip_block=block) if block is not None else None
    return Peer(pod_selector=_selector(raw.get("podSelector", MISSING), f"{path}.podSelector", check),
                namespace_selector=_selector(raw.get("namespaceSelector", MISSING),
                                             f"{path}.namespaceSelector", check))


def _ip_block(value: object, path: str, check: DocChecker) -> IPBlock | None:
    raw = check.mapping(value, path, required=True)
    check.known_keys(raw, path, ("cidr", "except"))
    cidr = check.network(raw.get("cidr", MISSING), f"{path}.cidr", "cidr", required=True)
    excepts = []
    for j, item in enumerate(check.sequence(raw.get("except", MISSING), f"{path}.except")):
        where = f"{path}.except[{j}]"
        net = check.network(item, where, "except", required=True)
        if net is None or cidr is None:
            continue
        if not net.subnet_of(cidr) or net.prefixlen <= cidr.prefixlen:
            check.error(where, f"except {net} is not a strict subset of cidr {cidr}",
                        f"give a smaller block inside {cidr}, or remove it")
            continue
        excepts.append(net)
    if cidr is None:
        return None
    return IPBlock(cidr, tuple(excepts))


def _port(item: object, path: str, check: DocChecker) -> PolicyPort | None:
    raw = check.mapping(item, path, required=True)
    check.known_keys(raw, path, PORT_KEYS)
    errors_before = check.errors
    proto_text = check.string(raw.get("protocol", MISSING), f"{path}.protocol") or Protocol.TCP.value
    protocol = Protocol.TCP
    try:
        protocol = Protocol(proto_text)
    except ValueError:
        check.error(f"{path}.protocol", f"unknown protocol {proto_text!r}",
                    "use one of: " + ", ".join(p.value for p in Protocol))
    port = _port_value(raw.get("port", MISSING), f"{path}.port", check)
    end_port = check.integer(raw.get("endPort", MISSING), f"{path}.endPort", 1, 65535)
    if end_port is not None:
        if "port" not in raw:
            check.error(f"{path}.endPort", "endPort without port", "add port: the first port of the range")
        elif isinstance(port, str):
            check.error(f"{path}.endPort", f"endPort cannot extend the named port {port!r}",
                        "give port as a number")
        elif isinstance(port, int) and end_port < port:
            check.error(f"{path}.endPort", f"endPort {end_port} is below port {port}",
                        f"use an endPort of {port} or more")
    if check.errors > errors_before:
        return None
    return PolicyPort(protocol, port, end_port)


def _port_value(value: object, path: str, check: DocChecker) -> int | str | None:
    if value is MISSING or value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return check.integer(value, path, 1, 65535)
    if not isinstance(value, str):
        check.error(path, f"expected a port number or name, got {type_name(value)}", "e.g. port: 80")
        return None
    if value.isdigit():
        check.error(path, f"port {value!r} is a quoted number, read as a port name",
                    f"write it without quotes: port: {value}")
        return None
    if len(value) > 15 or not IANA_SVC_NAME.match(value):
        check.error(path, f"port name {value!r} is not an IANA service name",
                    "at most 15 lower-case letters, digits and '-', as in the pod's ports[].name")
        return None
    return value


def _policy_types(value: object, path: str, check: DocChecker) -> tuple[PolicyType, ...]:
    """The listed types; empty when left out, which the caller defaults as the API does."""
    types: list[PolicyType] = []
    for i, item in enumerate(check.sequence(value, path)):
        text = check.string(item, f"{path}[{i}]", required=True)
        if text is None:
            continue
        try:
            kind = PolicyType(text)
        except ValueError:
            check.error(f"{path}[{i}]", f"unknown policy type {text!r}",
                        "use one of: " + ", ".join(t.value for t in PolicyType))
            continue
        if kind in types:
            check.error(f"{path}[{i}]", f"policy type {text!r} is listed twice", "list each type once")
            continue
        types.append(kind)
    return tuple(types)
