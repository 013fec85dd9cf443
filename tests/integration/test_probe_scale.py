"""`netlab probe` at scale: the matrix of a 100-pod lab is exact right after `up`.

10 nodes × 10 pods (the compact form, a responder container per pod), probed with the CLI as users run
it, the moment `up` returns: neighbour caches are cold and ~10,000 connections are asked for at
once. Without any policy every one of the 9,900 ordered pairs must be allowed; with policies
that deny half of them the matrix must equal the policy oracle's, pair by pair. No timing is
asserted (the speed is measured by benchmarks/probe.py).
"""
from __future__ import annotations

import json

import pytest

from netlab.core import ipam
from netlab.core.policy.evaluate import truth_table
from netlab.model.lab import Protocol
from netlab.spec.labtext import scale_lab_yaml, split_policies
from tests.support.kernel import netlab
from tests.support.labs import lab_name

pytestmark = pytest.mark.root

NODES, PODS_PER_NODE = 10, 10
PAIRS = NODES * PODS_PER_NODE * (NODES * PODS_PER_NODE - 1)
LOW = [f"node-{n}" for n in range(1, NODES // 2 + 1)]   # pods of nodes 1-5 talk only among themselves


def scale_lab(name: str, policies: str = "") -> str:
    return scale_lab_yaml(name, NODES, PODS_PER_NODE, ports=(80,), documents=policies)


def probed(name: str) -> tuple[dict[tuple[str, str], bool], str]:
    """The matrix `netlab probe --json` reports, and its stderr (the summary: why, when wrong)."""
    proc = netlab("probe", "--name", name, "--port", "80", "--json", check=True, timeout=300)
    out = json.loads(proc.stdout)
    assert len(out["results"]) == PAIRS
    return {(r["from"], r["to"]): r["allowed"] for r in out["results"]}, proc.stderr


def test_probe_right_after_up_without_policy_allows_all_9900_pairs(make_lab):
    name = lab_name("ps")
    make_lab(scale_lab(name))
    seen, summary = probed(name)
    blocked = sorted(pair for pair, allowed in seen.items() if not allowed)
    assert not blocked, f"{len(blocked)} of {PAIRS} pairs reported blocked with no policy: {blocked[:10]}\n{summary}"


def test_probe_right_after_up_with_half_denied_equals_the_oracle(make_lab):
    name = lab_name("pd")
    # low→high dropped on the source's node (egress), high→low on the destination's (ingress)
    labfile, _, _ = make_lab(scale_lab(name, split_policies(LOW)))
    expected = truth_table(labfile, ipam.allocate(labfile).pod_ips, 80, Protocol.TCP)
    assert sum(not allowed for allowed in expected.values()) == 5000
    seen, summary = probed(name)
    wrong = sorted(pair for pair in expected if seen[pair] != expected[pair])
    assert not wrong, (f"{len(wrong)} of {PAIRS} pairs differ from the oracle, e.g. "
                       + ", ".join(f"{s}->{d} expected {'allowed' if expected[(s, d)] else 'denied'}"
                                   for s, d in wrong[:10]) + "\n" + summary)
