"""The oracle against the hand-written truth tables of tests/policy_cases."""
from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from netlab.core import ipam
from netlab.spec.loader import load_text
from netlab.core.policy.evaluate import truth_table
from tests.policy_cases.cases import CASES, PODS, Case, pod_ip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_oracle_matches_truth_table(case: Case) -> None:
    lab = load_text(case.yaml, case.name)
    pod_ips = ipam.allocate(lab).pod_ips
    got = truth_table(lab, pod_ips, case.port, case.protocol)
    wrong = [f"{src} -> {dst}: expected {'allowed' if want else 'denied'}"
             for (src, dst), want in case.expected.items() if got[(src, dst)] != want]
    assert not wrong, f"{case.name} ({case.port}/{case.protocol}):\n" + "\n".join(wrong)
    assert set(got) == set(case.expected)


def test_cases_cover_every_ordered_pair() -> None:
    pairs = {(a, b) for a in PODS for b in PODS if a != b}
    for case in CASES:
        assert set(case.expected) == pairs, case.name


def test_pinned_ips_are_the_documented_ones() -> None:
    lab = load_text(CASES[0].yaml, "base")
    pod_ips = ipam.allocate(lab).pod_ips
    assert pod_ips == {key: IPv4Address(pod_ip(key)) for key in PODS}


def test_case_names_are_unique() -> None:
    names = [c.name for c in CASES]
    assert len(names) == len(set(names))
