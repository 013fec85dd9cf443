"""The loader under random input: never a traceback; `validate` exits 0 or 2, nothing else."""
from __future__ import annotations

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netlab.spec import loader
from netlab.cli import main
from netlab.errors import InputError
from tests.support.labs import lab_yaml, pod_yaml

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False),
                    st.text(max_size=30), st.sampled_from(["172.16.0.0/16", "10.0.0.0/33", "banana", "node-1",
                                                           "vxlan", "host-gw", "TCP", "UDP", "default"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12) | st.sampled_from(
        ["apiVersion", "kind", "metadata", "spec", "name", "nodes", "backend", "containers", "ports",
         "networking", "podSubnet", "nodeName", "containerPort", "ingress", "from", "podSelector"]),
        inner, max_size=5)), max_leaves=20)

BASE = yaml.safe_load_all(lab_yaml("fz") + pod_yaml("a", "node-1"))
BASE_DOCS = list(BASE)


def _validate(text: str) -> None:
    try:
        loader.load_text(text, "fuzz.yaml")
    except InputError as err:
        assert err.problems and all(str(p).startswith("fuzz.yaml") for p in err.problems)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(values, max_size=4))
def test_random_documents_never_raise_anything_but_input_error(docs):
    _validate(yaml.safe_dump_all(docs))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(BASE_DOCS) - 1), st.lists(st.text(max_size=10), min_size=1, max_size=3), values)
def test_random_values_in_a_real_lab(doc_index, path, value):
    docs = yaml.safe_load_all(lab_yaml("fz") + pod_yaml("a", "node-1"))
    docs = list(docs)
    target = docs[doc_index]
    for key in path[:-1]:
        nxt = target.get(key) if isinstance(target, dict) else None
        if not isinstance(nxt, dict):
            nxt = {}
            target[key] = nxt
        target = nxt
    target[path[-1]] = value
    _validate(yaml.safe_dump_all(docs))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_random_text(text):
    _validate(text)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(values, max_size=3))
def test_validate_command_exits_0_or_2_without_traceback(tmp_path_factory, docs):
    path = tmp_path_factory.mktemp("fz") / "lab.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output
