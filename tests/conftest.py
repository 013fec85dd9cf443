"""Test tiers: unit tests need nothing; tests marked `root` build real namespaces.

Every root test runs with NETLAB_RUN_DIR in a temporary directory, gets lab names
unique to this run, and the session checks the root namespace is exactly as it was.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.hostsnap import leftovers, snapshot
from tests.support.labs import RUN_TAG

IS_ROOT = os.geteuid() == 0


def pytest_collection_modifyitems(config, items):
    if IS_ROOT:
        return
    skip = pytest.mark.skip(reason="needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to build namespaces")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def isolated_run_dir(tmp_path_factory):
    """State under a temporary directory, inherited by every netlab the tests start."""
    run_dir = tmp_path_factory.mktemp("netlab-run")
    old = os.environ.get("NETLAB_RUN_DIR")
    os.environ["NETLAB_RUN_DIR"] = str(run_dir)
    yield run_dir
    if old is None:
        os.environ.pop("NETLAB_RUN_DIR", None)
    else:
        os.environ["NETLAB_RUN_DIR"] = old


@pytest.fixture(scope="session", autouse=True)
def host_unchanged(isolated_run_dir):
    """The whole suite must leave the root namespace as it found it."""
    if not IS_ROOT:
        yield
        return
    before = snapshot()
    yield
    after = snapshot()
    changed = {key: (before[key], after[key]) for key in before if before[key] != after[key]}
    assert not changed, f"the test suite changed the root namespace: {changed}"
    left = leftovers(RUN_TAG)
    assert not left, f"the test suite left these behind: {left}"
    state_left = list(isolated_run_dir.iterdir()) if isolated_run_dir.exists() else []
    assert not state_left, f"the test suite left lab state behind: {state_left}"


@pytest.fixture
def make_lab(tmp_path):
    """Build labs from YAML text; every one is taken down after the test, whatever happened."""
    from netlab.ops import lab as lab_ops
    from netlab.spec import loader

    names: list[str] = []

    def build(text: str):
        path = Path(tmp_path) / f"lab{len(names)}.yaml"
        path.write_text(text)
        labfile = loader.load_file(str(path))
        names.append(labfile.lab.name)
        result = lab_ops.up(labfile)
        return labfile, result, path

    yield build
    for name in names:
        lab_ops.down(name)
