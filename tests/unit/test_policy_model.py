"""Label selectors and policy-type defaulting: the building blocks of every verdict."""
from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from netlab.model.lab import frozen_map
from netlab.model.policy import (IPBlock, LabelRequirement, LabelSelector, Operator, PolicyType, Rule,
                                 default_policy_types)

LABELS = {"pod": "a", "tier": "web"}


def selector(labels: dict[str, str] | None = None, *reqs: LabelRequirement) -> LabelSelector:
    return LabelSelector(frozen_map(labels), tuple(reqs))


@pytest.mark.parametrize("sel, labels, want", [
    (selector(), {}, True),
    (selector(), LABELS, True),
    (selector({"pod": "a"}), LABELS, True),
    (selector({"pod": "b"}), LABELS, False),
    (selector({"pod": "a", "tier": "db"}), LABELS, False),
    (selector({"missing": ""}), LABELS, False),
    (selector(None, LabelRequirement("pod", Operator.IN, ("a", "b"))), LABELS, True),
    (selector(None, LabelRequirement("pod", Operator.IN, ("b",))), LABELS, False),
    (selector(None, LabelRequirement("x", Operator.IN, ("a",))), LABELS, False),
    (selector(None, LabelRequirement("pod", Operator.NOT_IN, ("a",))), LABELS, False),
    (selector(None, LabelRequirement("pod", Operator.NOT_IN, ("b",))), LABELS, True),
    (selector(None, LabelRequirement("x", Operator.NOT_IN, ("a",))), LABELS, True),  # absent key: NotIn holds
    (selector(None, LabelRequirement("tier", Operator.EXISTS)), LABELS, True),
    (selector(None, LabelRequirement("x", Operator.EXISTS)), LABELS, False),
    (selector(None, LabelRequirement("x", Operator.DOES_NOT_EXIST)), LABELS, True),
    (selector(None, LabelRequirement("pod", Operator.DOES_NOT_EXIST)), LABELS, False),
    # matchLabels and every expression are ANDed
    (selector({"pod": "a"}, LabelRequirement("tier", Operator.IN, ("db",))), LABELS, False),
    (selector({"pod": "a"}, LabelRequirement("tier", Operator.EXISTS),
              LabelRequirement("x", Operator.DOES_NOT_EXIST)), LABELS, True),
])
def test_selector_matches(sel: LabelSelector, labels: dict[str, str], want: bool) -> None:
    assert sel.matches(labels) is want


def test_selector_text_is_kubectl_syntax() -> None:
    sel = selector({"pod": "a"}, LabelRequirement("tier", Operator.NOT_IN, ("x", "y")),
                   LabelRequirement("env", Operator.EXISTS), LabelRequirement("old", Operator.DOES_NOT_EXIST))
    assert str(sel) == "pod=a,tier notin (x,y),env,!old"
    assert str(selector()) == "{}"


def test_ip_block_except() -> None:
    block = IPBlock(IPv4Network("10.0.0.0/8"), (IPv4Network("10.1.0.0/16"),))
    assert block.contains(IPv4Address("10.2.3.4"))
    assert not block.contains(IPv4Address("10.1.3.4"))
    assert not block.contains(IPv4Address("11.0.0.1"))


@pytest.mark.parametrize("explicit, egress, want", [
    ((), (), (PolicyType.INGRESS,)),
    ((), (Rule(),), (PolicyType.INGRESS, PolicyType.EGRESS)),
    ((PolicyType.EGRESS,), (), (PolicyType.EGRESS,)),
    ((PolicyType.EGRESS, PolicyType.INGRESS), (), (PolicyType.INGRESS, PolicyType.EGRESS)),
])
def test_default_policy_types(explicit: tuple[PolicyType, ...], egress: tuple[Rule, ...],
                              want: tuple[PolicyType, ...]) -> None:
    assert default_policy_types(explicit, egress) == want
