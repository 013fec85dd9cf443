"""Every backend is registered and every step kind can be both described and applied."""
from __future__ import annotations

import typing

from netlab.core.backends import REGISTRY
from netlab.core.steps import Step
from netlab.kernel.apply import APPLIERS
from netlab.model.lab import Backend


def test_every_backend_has_its_kind():
    assert set(REGISTRY) == set(Backend)
    assert all(kind.name is name for name, kind in REGISTRY.items())


def test_every_step_kind_has_a_description_and_an_applier():
    kinds = typing.get_args(Step)
    assert set(kinds) == set(APPLIERS)
    assert all(callable(getattr(kind, "describe", None)) for kind in kinds)
