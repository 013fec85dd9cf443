"""NetworkPolicy on real namespaces: every conformance case's full matrix, probed for real.

Each distinct lab of tests/policy_cases is built once and probed with the code behind
`netlab probe` (all its ports and protocols in one run); the observed matrix must equal
the hand-written one. Then: `netlab apply` changes what is allowed without rebuilding,
removing the policies reopens everything, replies pass, nothing reaches the root namespace.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from netlab.kernel import netns
from netlab.ops import state
from netlab.tools import probe as prober
from netlab.model.lab import Protocol
from tests.support.labs import lab_name
from tests.support.kernel import lab_namespaces, lab_processes, netlab
from tests.policy_cases.cases import CASES, NODE_OF_POD, PODS, Case

pytestmark = pytest.mark.root

TIMEOUT = 1.0   # generous for veths on a busy machine; a drop costs exactly this once per lab
LAB_LINE = "metadata: {name: netpol}"


def _groups() -> dict[str, list[Case]]:
    groups: dict[str, list[Case]] = {}
    for case in CASES:
        groups.setdefault(case.yaml, []).append(case)
    return {cases[0].name.split("/")[0]: cases for cases in groups.values()}


GROUPS = _groups()


def named(text: str, name: str) -> str:
    assert text.count(LAB_LINE) == 1
    return text.replace(LAB_LINE, f"metadata: {{name: {name}}}")


def observe(name: str, checks: list[prober.Check]) -> dict[prober.Check, dict[tuple[str, str], bool]]:
    """The probe `netlab probe` runs, on lab `name`: check → {(from, to): allowed}."""
    record = state.load(name)
    assert prober.wait_for_listeners(record, checks, limit=120) == []   # slow where the CPU is emulated (the VM)
    out: dict[prober.Check, dict[tuple[str, str], bool]] = {c: {} for c in checks}
    for result in prober.probe(prober.pods_of(record), checks, TIMEOUT):
        out[prober.Check(result.port, result.protocol)][(result.src, result.dst)] = result.allowed
    return out


def drawn(matrix: dict[tuple[str, str], bool]) -> str:
    rows = ["      " + " ".join(f"{p:>3}" for p in PODS)]
    for src in PODS:
        rows.append(f"{src:>5} " + " ".join("  -" if src == dst else ("  ." if matrix[(src, dst)] else "  X")
                                            for dst in PODS))
    return "\n".join(rows)


def mismatches(case: Case, observed: dict[tuple[str, str], bool]) -> str:
    if observed == dict(case.expected):
        return ""
    wrong = [f"{s} -> {d}: expected {'allowed' if want else 'denied'}"
             for (s, d), want in case.expected.items() if observed.get((s, d)) != want]
    return (f"{case.name} ({case.description}):\n" + "\n".join(wrong)
            + f"\nexpected:\n{drawn(dict(case.expected))}\nobserved:\n{drawn(observed)}")


@pytest.mark.parametrize("cases", list(GROUPS.values()), ids=list(GROUPS))
def test_conformance_matrix_on_a_real_lab(make_lab, cases: list[Case]):
    name = lab_name("np")
    make_lab(named(cases[0].yaml, name))
    checks = sorted({prober.Check(c.port, c.protocol) for c in cases}, key=lambda c: (c.protocol, c.port))
    observed = observe(name, checks)
    problems = [m for m in (mismatches(c, observed[prober.Check(c.port, c.protocol)]) for c in cases) if m]
    assert not problems, "\n\n".join(problems)


def _case(name: str) -> Case:
    return next(c for c in CASES if c.name == name)


def _nft_tables(netns_name: str) -> str:
    return subprocess.run(["ip", "netns", "exec", netns_name, "nft", "list", "tables"],
                          capture_output=True, text=True, check=True).stdout


def test_apply_changes_policies_without_rebuilding(make_lab, tmp_path):
    name = lab_name("ap")
    deny_x = _case("deny-ingress-x/tcp80")
    _, result, path = make_lab(named(deny_x.yaml, name))
    nodes = [f"{name}.node-1", f"{name}.node-2"]
    inodes = {ns: netns.inode(ns) for ns in lab_namespaces(name)}
    containers = sorted(lab_processes(name))
    tcp80, udp80 = prober.Check(80, Protocol.TCP), prober.Check(80, Protocol.UDP)
    seen = observe(name, [tcp80])[tcp80]
    assert seen == dict(deny_x.expected)
    # same node (y/a, node-1 -> x/c, node-1) and cross node (y/b, node-2 -> x/c) are both dropped
    assert NODE_OF_POD["a"] == NODE_OF_POD["c"] != NODE_OF_POD["b"]
    assert not seen[("y/a", "x/c")] and not seen[("y/b", "x/c")] and seen[("x/a", "y/b")]
    assert "netlab_policy" in _nft_tables(nodes[0]) and "netlab_policy" not in _nft_tables_root()
    assert state.load(name).policies == ("x/deny-ingress",)

    # egress isolation: x sends nothing new, yet replies to connections into x pass
    deny_egress = _case("deny-egress-x/tcp80")
    path.write_text(named(deny_egress.yaml, name))
    netlab("apply", str(path), check=True)
    seen = observe(name, [tcp80, udp80])
    assert seen[tcp80] == dict(deny_egress.expected)
    assert seen[udp80][("y/b", "x/a")] and seen[udp80][("y/a", "x/c")]
    assert not seen[udp80][("x/a", "y/b")] and not seen[udp80][("x/a", "x/c")]

    # another policy set: the matrix follows, the namespaces and containers stay
    and_case = _case("x-a-ns-and-pod/tcp80")
    path.write_text(named(and_case.yaml, name))
    out = netlab("apply", str(path), check=True).stdout
    assert "+x/" in out and "-x/deny-egress" in out
    assert observe(name, [tcp80])[tcp80] == dict(and_case.expected)
    probe_json = json.loads(netlab("probe", "--name", name, "--port", "80", "--json",
                                   "--timeout", str(TIMEOUT), check=True).stdout)
    assert all(set(r) == {"from", "to", "port", "protocol", "allowed", "outcome"} for r in probe_json["results"])
    assert {(r["from"], r["to"]): r["allowed"] for r in probe_json["results"]
            if r["protocol"] == "TCP" and r["port"] == 80} == dict(and_case.expected)
    assert len(probe_json["results"]) == len(PODS) * (len(PODS) - 1)
    explained = netlab("policy", "explain", "--name", name, "z/c", "x/a", "80/tcp", check=True).stdout
    assert explained.startswith("z/c (172.16.1.32) -> x/a (172.16.1.10) 80/TCP: denied")
    assert netlab("policy", "explain", "--name", name, "nosuch", "x/a", "80").returncode == 2

    # no policies left: everything reopens and the tables are gone
    path.write_text(named(_case("no-policy/tcp80").yaml, name))
    netlab("apply", str(path), check=True)
    assert all(observe(name, [tcp80])[tcp80].values())
    assert all("netlab_policy" not in _nft_tables(ns) for ns in nodes)
    assert state.load(name).policies == ()

    # `up` converges the policies too, and still rebuilds nothing
    path.write_text(named(deny_x.yaml, name))
    up = netlab("up", str(path), check=True)
    assert "0 namespaces created" in up.stdout
    assert observe(name, [tcp80])[tcp80] == dict(deny_x.expected)

    assert {ns: netns.inode(ns) for ns in lab_namespaces(name)} == inodes
    assert sorted(lab_processes(name)) == containers


def _table(netns_name: str) -> str:
    """The policy table of a node namespace, with handles ("" when there is none)."""
    proc = subprocess.run(["ip", "netns", "exec", netns_name, "nft", "-a", "list", "table", "inet", "netlab_policy"],
                          capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else ""


def _until(condition, what: str) -> None:
    """Wait for the kernel to reach a state another process set up (no timing is asserted)."""
    for _ in range(400):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"never: {what}")


def test_apply_is_atomic_per_node_and_retries_the_nodes_behind(make_lab, tmp_path):
    name = lab_name("pn")
    deny_x, deny_egress = _case("deny-ingress-x/tcp80"), _case("deny-egress-x/tcp80")
    _, _, path = make_lab(named(deny_x.yaml, name))
    good, bad = f"{name}.node-1", f"{name}.node-2"
    before = state.load(name)
    assert before.policies == ("x/deny-ingress",)
    assert "map ingress_isolated" in _table(good) and "map ingress_isolated" in _table(bad)

    # node-2's table replaced by one another process owns (nft's "flags owner"): nft -f cannot touch it
    subprocess.run(["ip", "netns", "exec", bad, "nft", "delete", "table", "inet", "netlab_policy"], check=True)
    holder = subprocess.Popen(["ip", "netns", "exec", bad, "nft", "-i"], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    try:
        holder.stdin.write("add table inet netlab_policy { flags owner; }\n")
        holder.stdin.flush()
        _until(lambda: "flags owner" in _table(bad), "the owned table is there")
        path.write_text(named(deny_egress.yaml, name))
        proc = netlab("apply", str(path))
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        assert "node node-2: nft exited 1" in proc.stderr and "node node-1:" not in proc.stderr
        assert "NetworkPolicies x/deny-ingress" in proc.stderr          # what node-2 still holds
        assert "new rules are in force on node node-1" in proc.stderr
        after = state.load(name)
        # the lab-wide claim stays the old one; per node, only node-1 holds the new rules
        assert after.policies == ("x/deny-ingress",) and after.policy_digest == before.policy_digest
        assert after.policy_nodes["node-2"] == before.policy_nodes["node-2"]
        assert after.policy_nodes["node-1"] != before.policy_nodes["node-1"]
        listed = _table(good)
        assert "map egress_isolated" in listed and "ingress_isolated" not in listed
        assert "flags owner" in _table(bad) and "isolated" not in _table(bad)
    finally:
        holder.stdin.close()
        holder.wait()
    _until(lambda: "flags owner" not in _table(bad), "the owned table went with its owner")

    # the obstacle gone: a later apply rewrites node-2 only, and the lab holds the new rules everywhere
    handle = _table(good).splitlines()[0]
    assert "# handle" in handle
    out = netlab("apply", str(path), check=True).stdout
    assert "+x/deny-egress" in out and "-x/deny-ingress" in out
    converged = state.load(name)
    assert converged.policies == ("x/deny-egress",)
    assert converged.policy_nodes["node-1"] == after.policy_nodes["node-1"]
    assert set(converged.policy_nodes) == {"node-1", "node-2"}
    assert "map egress_isolated" in _table(bad)
    assert _table(good).splitlines()[0] == handle      # same table handle: node-1 was not rewritten
    tcp80 = prober.Check(80, Protocol.TCP)
    assert observe(name, [tcp80])[tcp80] == dict(deny_egress.expected)

    # `up` likewise: node-1 refuses, the run fails naming it; the next `up` retries node-1 alone
    subprocess.run(["ip", "netns", "exec", good, "nft", "delete", "table", "inet", "netlab_policy"], check=True)
    holder = subprocess.Popen(["ip", "netns", "exec", good, "nft", "-i"], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    try:
        holder.stdin.write("add table inet netlab_policy { flags owner; }\n")
        holder.stdin.flush()
        _until(lambda: "flags owner" in _table(good), "the owned table is there")
        path.write_text(named(deny_x.yaml, name))
        proc = netlab("up", str(path))
        assert proc.returncode == 1 and "node node-1: nft exited 1" in proc.stderr, proc.stderr
        assert "NetworkPolicies x/deny-egress" in proc.stderr and "node node-2:" not in proc.stderr
        failed = state.load(name)
        assert failed.status == "failed" and failed.policies == ("x/deny-egress",)
        assert failed.policy_nodes["node-1"] == converged.policy_nodes["node-1"]
        assert "map ingress_isolated" in _table(bad)
    finally:
        holder.stdin.close()
        holder.wait()
    _until(lambda: "flags owner" not in _table(good), "the owned table went with its owner")
    handle = _table(bad).splitlines()[0]
    assert "0 namespaces created" in netlab("up", str(path), check=True).stdout
    final = state.load(name)
    assert final.status == "ready" and final.policies == ("x/deny-ingress",)
    assert final.policy_nodes["node-2"] == failed.policy_nodes["node-2"]
    assert "map ingress_isolated" in _table(good) and _table(bad).splitlines()[0] == handle
    assert observe(name, [tcp80])[tcp80] == dict(deny_x.expected)


def _nft_tables_root() -> str:
    return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout


def test_apply_refuses_a_lab_that_is_not_up_or_differs(make_lab, tmp_path):
    name, absent = lab_name("rf"), lab_name("nu")
    other = tmp_path / "not-up.yaml"
    other.write_text(named(_case("deny-ingress-x/tcp80").yaml, absent))
    proc = netlab("apply", str(other))
    assert proc.returncode == 1 and "netlab up" in proc.stderr
    assert not state.lab_dir(absent).exists()

    text = named(_case("deny-ingress-x/tcp80").yaml, name)
    _, _, path = make_lab(text)
    docs = text.split("---\n")
    path.write_text("---\n".join(d for d in docs if "name: c\n  namespace: z" not in d))
    proc = netlab("apply", str(path))
    assert proc.returncode == 1 and "pod z/c is not in the file" in proc.stderr and "netlab up" in proc.stderr


def test_missing_nft_is_named_before_anything_is_built(tmp_path):
    name = lab_name("nf")
    path = tmp_path / "lab.yaml"
    path.write_text(named(_case("deny-ingress-x/tcp80").yaml, name))
    env = dict(os.environ, PATH=str(tmp_path / "no-bin"))
    proc = subprocess.run([sys.executable, "-m", "netlab", "up", str(path)], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "nft" in proc.stderr and "nothing was created" in proc.stderr
    assert lab_namespaces(name) == [] and not state.lab_dir(name).exists()


def test_host_gw_enforces_the_same_matrix(make_lab):
    """Routed without a tunnel: the node namespaces still see every pod packet."""
    name = lab_name("hg")
    case = _case("x-a-ns-or-pod/tcp80")
    make_lab(named(case.yaml, name).replace("backend: vxlan", "backend: host-gw"))
    check = prober.Check(80, Protocol.TCP)
    problem = mismatches(case, observe(name, [check])[check])
    assert not problem, problem
