"""The YAML reader under hostile input: bounded work, every problem with its line, and good input
read the same whether libyaml's C parser or PyYAML's pure-Python one does the parsing."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from netlab.model import yamlsrc
from netlab.spec import loader
from netlab.errors import InputError
from tests.support.labs import lab_yaml, pod_yaml

ROOT = Path(__file__).parents[2]
TOPOLOGIES = sorted((ROOT / "topologies").glob("*.yaml"))
PARSERS = [pytest.param(False, id="libyaml"), pytest.param(True, id="pure-python")]
needs_libyaml = pytest.mark.skipif(yamlsrc.FAST_LOADER is None, reason="PyYAML built without libyaml")


@pytest.fixture
def deadline():
    """Turn a regression into a failure instead of a hang: 60 s for what takes well under one (the
    old code ran a minute into MemoryError; a loaded CI machine must not make this flaky)."""
    def expired(signum, frame):
        raise TimeoutError("still reading after 60 s")
    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    """`a: &a [lol, ...]`, `b: &b [*a, *a, ...]`, ...: a few hundred bytes, width**levels scalars."""
    rows = ["a: &a [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels):
        name, prev = chr(ord("a") + level), chr(ord("a") + level - 1)
        rows.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * width) + "]")
    return "\n".join(rows) + "\n"


def big_lab(nodes: int = 10, pods_per_node: int = 100) -> str:
    """The explicit lab the loading target is measured on: one Pod document per pod."""
    return lab_yaml("big", nodes=nodes, pod_subnet="172.16.0.0/12") + "".join(
        pod_yaml(f"p{n}-{i}", f"node-{n}") for n in range(1, nodes + 1) for i in range(pods_per_node))


def read(text: str, pure_python: bool = False):
    return yamlsrc.load_documents(text, "lab.yaml", pure_python=pure_python)


def messages(text: str, pure_python: bool = False) -> list[str]:
    return [str(p) for p in read(text, pure_python)[1]]


# --- alias expansion ------------------------------------------------------------------------------

@pytest.mark.parametrize("pure_python", PARSERS)
def test_alias_bomb_is_an_input_problem(pure_python, deadline):
    text = billion_laughs()
    assert len(text) < 400
    docs, problems = read(text, pure_python)
    assert len(problems) == 1
    problem = problems[0]
    assert problem.file == "lab.yaml" and problem.line is not None
    assert "YAML aliases expand to more than 100,000 nodes (an alias bomb?)" in problem.message


def test_alias_bomb_exits_2_from_load_file(tmp_path, deadline):
    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs())
    with pytest.raises(InputError) as err:
        loader.load_file(str(path))
    assert str(err.value).startswith(f"{path}:1: ") and "alias bomb" in str(err.value)


def test_many_documents_share_one_alias_budget(deadline):
    # each document alone stays under the floor; the file as a whole may not multiply the work
    one = billion_laughs(levels=5, width=9)   # 9**5 = 59,049 scalars per document
    problems = read("---\n".join([one] * 5))[1]
    assert [p for p in problems if "alias bomb" in p.message]


@pytest.mark.parametrize("pure_python", PARSERS)
def test_a_few_anchors_still_work(pure_python):
    text = textwrap.dedent("""\
        defaults: &ports [{containerPort: 80}, {containerPort: 443}]
        a: {ports: *ports}
        b: {ports: *ports}
        """)
    docs, problems = read(text, pure_python)
    assert not problems
    assert docs[0].value["b"] == {"ports": [{"containerPort": 80}, {"containerPort": 443}]}
    assert docs[0].lines["b.ports[1].containerPort"] == 1   # an alias's fields are at the anchor


def test_anchors_in_a_real_lab_load():
    pod = textwrap.dedent("""\
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: NAME, namespace: default}
        spec:
          nodeName: node-1
          containers: CONTAINERS
        """)
    first = pod.replace("NAME", "p0").replace("CONTAINERS", "&c [{name: c, ports: [{containerPort: 80}]}]")
    text = lab_yaml("x") + first
    lab = loader.load_text(text, "lab.yaml")
    assert [p.name for p in lab.pods] == ["p0"]


@pytest.mark.parametrize("pure_python", PARSERS)
@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {b: *a}\n", "a: &a [*a, *a, *a]\n"])
def test_an_alias_inside_itself_is_a_problem(text, pure_python, deadline):
    [problem] = read(text, pure_python)[1]
    assert problem.line == 1 and "(or an alias contains itself)" in problem.message


# --- nesting --------------------------------------------------------------------------------------

@pytest.mark.parametrize("pure_python", PARSERS)
@pytest.mark.parametrize("depth", [150, 3000])
def test_deep_nesting_is_a_problem_not_a_traceback(depth, pure_python, deadline):
    for text in ("a: " + "[" * depth + "]" * depth + "\n", "a: " + "{b: " * depth + "1" + "}" * depth + "\n"):
        problems = read(text, pure_python)[1]
        assert len(problems) == 1 and "nest" in problems[0].message   # libyaml has its own cap at 1000


def test_deep_block_nesting_is_a_problem():
    text = "".join(" " * i + "k:\n" for i in range(300))
    [problem] = read(text)[1]
    assert problem.line is not None and "nests" in problem.message


def test_nesting_under_the_cap_is_read():
    depth = yamlsrc.MAX_DEPTH - 1
    docs, problems = read("[" * depth + "]" * depth + "\n")
    assert not problems


# --- duplicate keys -------------------------------------------------------------------------------

@pytest.mark.parametrize("pure_python", PARSERS)
def test_duplicate_keys_are_all_reported_with_line_and_path(pure_python):
    text = textwrap.dedent("""\
        apiVersion: v1
        kind: Lab
        spec:
          nodes:
            - name: node-1
              podCIDR: 10.0.0.0/24
              name: node-2
          backend: vxlan
          backend: ipip
        kind: Pod
        ---
        metadata: {name: a, name: b}
        """)
    assert messages(text, pure_python) == [
        "lab.yaml:7: spec.nodes[0].name: duplicate key (first at line 5) (give each key once)",
        "lab.yaml:9: spec.backend: duplicate key (first at line 8) (give each key once)",
        "lab.yaml:10: kind: duplicate key (first at line 2) (give each key once)",
        "lab.yaml:12: metadata.name: duplicate key (first at line 12) (give each key once)",
    ]


def test_duplicate_key_inside_the_repeated_value_is_reported_too():
    text = "a: {x: 1}\na: {y: 1, y: 2}\n"
    assert messages(text) == ["lab.yaml:2: a: duplicate key (first at line 1) (give each key once)",
                              "lab.yaml:2: a.y: duplicate key (first at line 2) (give each key once)"]


def test_duplicate_key_fails_the_lab():
    text = lab_yaml("x").replace("  backend: vxlan\n", "  backend: vxlan\n  backend: ipip\n")
    with pytest.raises(InputError) as err:
        loader.load_text(text, "lab.yaml")
    assert [str(p) for p in err.value.problems] == [
        "lab.yaml:13: spec.backend: duplicate key (first at line 12) (give each key once)"]


def test_a_mapping_as_a_key_is_a_problem():
    [problem] = read("? {a: 1}\n: x\n")[1]
    assert problem.line == 1 and "a mapping as a mapping key" in problem.message


# --- syntax and value errors keep file:line -------------------------------------------------------

@pytest.mark.parametrize("pure_python", PARSERS)
@pytest.mark.parametrize("text, line, words", [
    ("a: [1\nb: 2\n", 2, "YAML syntax error: while parsing a flow sequence"),
    ("a: 1\nb: *nope\n", 2, "YAML syntax error: found undefined alias"),
    ("a: 1\nb: !foo x\n", 2, "could not determine a constructor for the tag '!foo'"),
    ("a: 1\nb: 2024-13-45\n", 2, "YAML value error: month must be in 1..12"),
    ("é: 1\nb: \x07\n", 2, "unacceptable character #x0007"),
])
def test_errors_keep_file_and_line(text, line, words, pure_python):
    [problem] = read(text, pure_python)[1]
    assert problem.file == "lab.yaml" and problem.line == line and words in problem.message


def test_text_that_is_not_unicode_is_a_problem():
    [problem] = read("a: \udc80\n")[1]
    assert problem.file == "lab.yaml"


# --- good input is read the same by both parsers --------------------------------------------------

@needs_libyaml
@pytest.mark.parametrize("path", TOPOLOGIES + [ROOT / "netlab" / "data" / "default.yaml"], ids=lambda p: p.name)
def test_libyaml_and_pure_python_read_the_same(path):
    text = path.read_text()
    fast, fast_problems = read(text)
    slow, slow_problems = read(text, pure_python=True)
    assert not fast_problems and not slow_problems
    assert [(d.index, d.line, d.value, d.lines) for d in fast] == [(d.index, d.line, d.value, d.lines) for d in slow]
    assert fast and all(d.lines for d in fast)


@needs_libyaml
def test_libyaml_and_pure_python_read_the_same_big_lab():
    text = big_lab(nodes=2, pods_per_node=20)
    fast, slow = read(text)[0], read(text, pure_python=True)[0]
    assert [(d.value, d.lines) for d in fast] == [(d.value, d.lines) for d in slow]


def test_lines_of_fields():
    text = textwrap.dedent("""\
        apiVersion: v1
        spec:
          nodes:
            - name: a
            -
              name: b
          ports: [80,
                  443]
        """)
    [doc] = read(text)[0]
    assert doc.value == {"apiVersion": "v1", "spec": {"nodes": [{"name": "a"}, {"name": "b"}], "ports": [80, 443]}}
    assert doc.lines == {"": 1, "apiVersion": 1, "spec": 2, "spec.nodes": 3, "spec.nodes[0]": 4,
                         "spec.nodes[0].name": 4, "spec.nodes[1]": 6, "spec.nodes[1].name": 6, "spec.ports": 7,
                         "spec.ports[0]": 7, "spec.ports[1]": 8}


def test_the_1000_pod_lab_validates():
    lab = loader.load_text(big_lab(), "big.yaml")
    assert len(lab.pods) == 1000 and len(lab.lab.nodes) == 10


# --- the file itself ------------------------------------------------------------------------------

def _load_file_in_child(path: Path) -> subprocess.CompletedProcess:
    """load_file in another process, so that a missing check shows as a timeout, not a hung suite."""
    code = ("import sys\nfrom netlab.spec import loader\nfrom netlab.errors import InputError\n"
            "try:\n    loader.load_file(sys.argv[1])\nexcept InputError as err:\n"
            "    print(err)\n    sys.exit(2)\n")
    return subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=20,
                          cwd=ROOT)


def test_a_fifo_is_refused_not_read_forever(tmp_path):
    fifo = tmp_path / "lab.yaml"
    os.mkfifo(fifo)
    result = _load_file_in_child(fifo)
    assert result.returncode == 2, result.stderr
    assert result.stdout.startswith(f"{fifo}: is a FIFO (named pipe), not a lab file")


@pytest.mark.parametrize("path, what", [("/dev/null", "a character device"), ("/", "a directory")])
def test_devices_and_directories_are_refused(path, what):
    with pytest.raises(InputError) as err:
        loader.load_file(path)
    assert str(err.value).startswith(f"{path}: is {what}, not a lab file")


def test_a_file_over_the_size_cap_is_refused(tmp_path):
    path = tmp_path / "lab.yaml"
    with open(path, "wb") as f:
        f.truncate(loader.MAX_LAB_FILE + 1)   # sparse: costs no disk
    with pytest.raises(InputError) as err:
        loader.load_file(str(path))
    assert "a lab file may be at most 64 MiB" in str(err.value)


def test_a_regular_file_still_loads(tmp_path):
    path = tmp_path / "lab.yaml"
    path.write_text(lab_yaml("x") + pod_yaml("p", "node-1"))
    assert [p.name for p in loader.load_file(str(path)).pods] == ["p"]


def test_a_missing_file_is_named():
    with pytest.raises(InputError) as err:
        loader.load_file("/nonexistent/lab.yaml")
    assert str(err.value) == "/nonexistent/lab.yaml: no such file (give the path of a lab YAML file)"


def test_a_path_too_long_to_keep_for_every_field_is_a_problem():
    key = "k" * 400
    text = f"{key}:\n  {key}:\n    {key}: [1, 2, 3]\nnext: 1\n---\nother: [1]\n"
    docs, problems = read(text)
    assert [d.value for d in docs] == [{"other": [1]}]   # the next document is still read
    [problem] = problems
    assert problem.line == 3 and "a field path longer than 1000 characters" in problem.message
