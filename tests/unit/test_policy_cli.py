"""The pure parts of enforcement, `apply`, `probe` and `policy explain` (no root needed)."""
from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address

import pytest
from rich.console import Console

from netlab.core import ipam, plan
from netlab.cli.policy import find_end, parse_port
from netlab.cli.probe import matrix
from netlab.errors import InputError
from netlab.ops.lab import make_plan
from netlab.spec.loader import load_text
from netlab.model.lab import Protocol
from netlab.ops import policy as converge
from netlab.ops.record import LabRecord, NamespaceRecord, Networking, PodRecord, PortRecord
from netlab.kernel import policy as enforce
from netlab.tools.probe import Check, Outcome, PodEnd, Result, default_ports
from tests.policy_cases.cases import CASES, base_lab

DENY_X = next(c for c in CASES if c.name == "deny-ingress-x/tcp80").yaml
NO_POLICY = base_lab()


@pytest.mark.parametrize("text,want", [("80", (80, Protocol.TCP)), ("53/udp", (53, Protocol.UDP)),
                                       ("81/TCP", (81, Protocol.TCP)), ("9/sctp", (9, Protocol.SCTP)),
                                       ("80/", (80, Protocol.TCP))])
def test_port_argument(text, want):
    assert parse_port(text) == want


@pytest.mark.parametrize("text", ["0", "65536", "http", "80/icmp"])
def test_bad_port_argument_is_input_error(text):
    with pytest.raises(InputError):
        parse_port(text)


def test_pods_are_found_by_key_unique_name_or_ip():
    lab = load_text(DENY_X, "t.yaml")
    assert find_end(lab, "x/a", "SRC").key == "x/a"
    assert find_end(lab, "10.9.8.7", "DST") == IPv4Address("10.9.8.7")
    with pytest.raises(InputError, match="ambiguous"):
        find_end(lab, "a", "SRC")
    with pytest.raises(InputError, match="no pod named 'q'"):
        find_end(lab, "q", "SRC")


def _record_with_ports(*pods: tuple[PortRecord, ...]) -> LabRecord:
    return LabRecord("l", "vxlan", "<test>", Networking("172.16.0.0/16", "172.18.0.0/20", "cluster.local"),
                     pods=tuple(PodRecord(f"p{i}", "default", "node-1", f"172.16.0.{i + 2}", f"l.default.p{i}",
                                          ports=ports) for i, ports in enumerate(pods)))


def test_default_probe_ports_are_the_declared_ones_else_80():
    record = _record_with_ports((PortRecord(81, "TCP"), PortRecord(53, "UDP")), (PortRecord(80, "TCP"),), ())
    assert default_ports(record, Protocol.TCP) == [80, 81]
    assert default_ports(record, Protocol.UDP) == [53]
    assert default_ports(_record_with_ports(()), Protocol.UDP) == [80]


def test_probe_json_entry_is_the_contracts():
    result = Result("x/a", "y/b", 80, Protocol.UDP, Outcome.REPLIED)
    assert result.to_json() == {"from": "x/a", "to": "y/b", "port": 80, "protocol": "UDP", "allowed": True,
                                "outcome": "replied"}
    assert not Result("x/a", "y/b", 80, Protocol.TCP, Outcome.REFUSED).allowed


def test_matrix_rows_are_sources_and_columns_destinations():
    pods = [PodEnd("x/a", "n.x.a", IPv4Address("10.0.0.1")), PodEnd("x/b", "n.x.b", IPv4Address("10.0.0.2"))]
    results = [Result("x/a", "x/b", 80, Protocol.TCP, Outcome.TIMEOUT),
               Result("x/b", "x/a", 80, Protocol.TCP, Outcome.CONNECTED)]
    console = Console(width=80, record=True, color_system=None)
    console.print(matrix(pods, results, Check(80, Protocol.TCP)))
    rows = {line.split()[1]: line for line in console.export_text().splitlines() if line.startswith("│ x/")}
    assert rows["x/a"].split("│")[2:4] == ["  -  ", "  X  "]
    assert rows["x/b"].split("│")[2:4] == ["  .  ", "  -  "]


def _nodes(lab):
    return {n: plan.node_netns(lab.lab.name, n) for n in ipam.allocate(lab).nodes}


def test_rules_are_converged_only_when_there_are_or_were_policies():
    with_policy, without = load_text(DENY_X, "a.yaml"), load_text(NO_POLICY, "b.yaml")
    assert enforce.needed(with_policy, ())
    assert not enforce.needed(without, ())
    assert enforce.needed(without, ("x/deny-ingress",))   # their tables must go


def test_rule_digest_changes_with_what_the_rules_select():
    lab = load_text(DENY_X, "a.yaml")
    ips = ipam.allocate(lab).pod_ips
    scripts = enforce.rulesets(lab, ips, _nodes(lab))
    assert set(scripts) == {"netpol.node-1", "netpol.node-2"}
    relabelled = load_text(DENY_X.replace("labels: {ns: x, team: red}", "labels: {ns: q, team: red}"), "a.yaml")
    assert enforce.digest(scripts) == enforce.digest(enforce.rulesets(relabelled, ips, _nodes(lab)))
    moved = load_text(DENY_X.replace("podSelector: {}", "podSelector: {matchLabels: {pod: a}}", 1), "a.yaml")
    assert enforce.digest(scripts) != enforce.digest(enforce.rulesets(moved, ips, _nodes(lab)))


def test_underlay_backends_cannot_hold_policies():
    with pytest.raises(InputError, match="spec.backend"):   # refused by the loader, with the other input errors
        load_text(DENY_X.replace("backend: vxlan", "backend: macvlan"), "mv.yaml")
    enforce.check_enforceable(load_text(NO_POLICY.replace("backend: vxlan", "backend: macvlan"), "mv.yaml"))


def test_apply_needs_the_running_topology():
    lab = load_text(DENY_X, "a.yaml")
    the_plan = make_plan(lab)
    record = LabRecord("netpol", "vxlan", "a.yaml", Networking("172.16.0.0/16", "172.18.0.0/20", "cluster.local"),
                       status="ready",
                       namespaces={ns.name: NamespaceRecord(ns.role.value, ns.subject, ns.fingerprint)
                                   for ns in the_plan.namespaces})
    present = {ns.name for ns in the_plan.namespaces}
    assert converge.topology_differences(the_plan, record, present) == []
    fewer = load_text("---\n".join(d for d in DENY_X.split("---\n") if "name: c\n  namespace: z" not in d), "a.yaml")
    assert converge.topology_differences(make_plan(fewer), record, present) == ["pod z/c is not in the file"]
    assert converge.topology_differences(the_plan, record, present - {"netpol.node-2"}) == [
        "node node-2 is missing from the kernel"]
    assert "did not finish" in converge.topology_differences(the_plan, replace(record, status="failed"), present)[0]
