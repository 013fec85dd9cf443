"""Every backend is registered and every step kind can be both described and applied."""
from __future__ import annotations

import typing

import importlib

from netlab.core.backends import OPTION_KEYS, TABLE, Backend, kind, options
from netlab.core.steps import Step
from netlab.kernel.apply import APPLIERS
from netlab.model.checks import DocChecker
from netlab.model.yamlsrc import load_documents


def test_every_backend_has_its_kind():
    names = [name for name, _, _ in TABLE]
    assert names == [b.value for b in Backend] and len(set(names)) == len(names)
    for name, module, key in TABLE:   # the table says what each module's KIND says
        found = importlib.import_module(f"netlab.core.backends.{module}").KIND
        assert found is kind(Backend(name)) and found.name == name
        assert (found.options.key if found.options else None) == key
    assert Backend.HOST_GW == "host-gw" and Backend("ipvlan") is Backend.IPVLAN


def test_backend_options_are_read_by_their_backend():
    keys = [key for _, key in OPTION_KEYS]
    assert {"vxlan", "ipvlan"} <= set(keys) and len(set(keys)) == len(keys)
    assert not set(keys) & {"backend", "nodes", "scale", "underlay"}   # the Lab spec's own keys
    for owner, key in OPTION_KEYS:
        check = DocChecker(load_documents("x: 1\n", "t.yaml")[0][0], [])
        defaults = options(owner).parse({}, check, f"spec.{key}")
        assert check.problems == []
        assert type(defaults).__module__ == kind(owner).node_steps.__module__   # the backend's own module


def test_every_step_kind_has_a_description_and_an_applier():
    kinds = typing.get_args(Step)
    assert set(kinds) == set(APPLIERS)
    assert all(callable(getattr(kind, "describe", None)) for kind in kinds)
