"""Every backend is registered and every step kind can be both described and applied."""
from __future__ import annotations

import typing

from netlab.core.backends import KINDS, OPTIONS, REGISTRY, Backend
from netlab.core.steps import Step
from netlab.kernel.apply import APPLIERS
from netlab.model.checks import DocChecker
from netlab.model.yamlsrc import load_documents


def test_every_backend_has_its_kind():
    names = [kind.name for kind in KINDS]
    assert names == [b.value for b in Backend] and len(set(names)) == len(names)
    assert set(REGISTRY) == set(Backend) and all(kind.name == name for name, kind in REGISTRY.items())
    assert Backend.HOST_GW == "host-gw" and Backend("ipvlan") is Backend.IPVLAN


def test_backend_options_are_read_by_their_backend():
    keys = [o.key for _, o in OPTIONS]
    assert {"vxlan", "ipvlan"} <= set(keys) and len(set(keys)) == len(keys)
    assert not set(keys) & {"backend", "nodes", "scale", "underlay"}   # the Lab spec's own keys
    for owner, options in OPTIONS:
        check = DocChecker(load_documents("x: 1\n", "t.yaml")[0][0], [])
        defaults = options.parse({}, check, f"spec.{options.key}")
        assert check.problems == []
        assert type(defaults).__module__ == REGISTRY[owner].node_steps.__module__   # the backend's own module


def test_every_step_kind_has_a_description_and_an_applier():
    kinds = typing.get_args(Step)
    assert set(kinds) == set(APPLIERS)
    assert all(callable(getattr(kind, "describe", None)) for kind in kinds)
