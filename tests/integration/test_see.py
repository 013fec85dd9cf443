"""`netlab graph` and `netlab capture` on real labs: the picture from the kernel, packets on the wire."""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from netlab.ops import state
from tests.support.kernel import ip, netlab
from tests.support.labs import lab_name
from tests.support.pictures import check_mermaid, dot_to_svg, svg_texts

pytestmark = pytest.mark.root

DEFAULT_LAB = (Path(__file__).parents[2] / "netlab" / "data" / "default.yaml").read_text()
DB_ONLY_FROM_WEB = """
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-web, namespace: default}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]
"""
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz (Debian graphviz) is not installed")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The default lab under a run-unique name, plus a policy: db accepts only web."""
    from netlab.ops import lab as lab_ops
    from netlab.spec import loader
    name = lab_name("see")
    path = tmp_path_factory.mktemp("see") / "lab.yaml"
    path.write_text(DEFAULT_LAB.replace("name: demo", f"name: {name}") + DB_ONLY_FROM_WEB)
    lab_ops.up(loader.load_file(str(path)))
    try:
        yield name
    finally:
        lab_ops.down(name)


def graph(name: str, *args: str) -> str:
    return netlab("graph", "--name", name, *args, check=True).stdout


def test_graph_json_is_read_from_the_kernel(demo):
    data = json.loads(graph(demo, "--format", "json"))
    record = state.load(demo)
    boxes = {b["id"]: b for b in data["boxes"]}
    assert {f"pod:default/{p}" for p in ("web", "cache", "db", "api")} <= set(boxes)
    node1 = {i["name"]: i for i in boxes["node:node-1"]["ifaces"]}
    assert set(node1) == {"eth0", "cni0", "flannel.1"}
    assert node1["flannel.1"]["extra"] == "VNI 1 udp/8472 local 10.250.0.10"
    # each pod's link is drawn to the bridge its veth peer is a port of, named as iproute2 names it
    host_veths = {link["ifname"]: link.get("master") for link in ip(f"{demo}.node-1", "link", "show", "type", "veth")}
    for pod in ("web", "cache"):
        (edge,) = [e for e in data["edges"] if e["src"] == f"pod:default/{pod}"]
        assert host_veths[edge["label"]] == "cni0" == edge["dst_if"]
    vxlan = [e for e in data["edges"] if e["kind"] == "vxlan"]
    assert {(e["src"], e["dst"]) for e in vxlan} == {("node:node-1", "node:node-2"), ("node:node-2", "node:node-1")}
    assert any("VXLAN VNI 1 to 10.250.0.11:8472" in e["label"] for e in vxlan)
    (policy,) = [n for n in data["notes"] if n["kind"] == "NetworkPolicy"]
    assert policy["title"] == "default/db-from-web" and policy["attach"] == ["pod:default/db"]
    assert {p["ip"] for p in record["pods"]} == {boxes[f"pod:default/{p['name']}"]["ip"] for p in record["pods"]}


@needs_dot
def test_graph_dot_parses_and_svg_is_well_formed_with_every_pod(demo, tmp_path):
    dot_text = graph(demo, "--format", "dot")
    assert "subgraph cluster_node_0" in dot_text
    svg_from_dot = svg_texts(dot_to_svg(dot_text))
    out = tmp_path / "lab.svg"
    graph(demo, "-o", str(out))           # format from the suffix
    texts = " ".join(svg_texts(out.read_text()))
    assert " ".join(svg_from_dot) == texts
    for pod in state.load(demo)["pods"]:
        assert re.search(rf"\b{pod['name']}\b", texts) and pod["ip"] in texts
    assert "NetworkPolicy default/db-from-web" in texts
    png = tmp_path / "lab.png"
    graph(demo, "--format", "png", "-o", str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_graph_mermaid_is_well_formed_with_every_pod(demo):
    nodes, edges = check_mermaid(graph(demo, "--format", "mermaid"))
    labels = " ".join(nodes.values())
    for pod in state.load(demo)["pods"]:
        assert f"<b>{pod['name']}</b>" in labels and pod["ip"] in labels
    assert ("n_pod_default_web", "n_node_node_1") in edges


def test_graph_without_graphviz_names_the_package_and_does_nothing(demo, tmp_path):
    out = tmp_path / "lab.svg"
    proc = netlab_with_path(str(tmp_path), "graph", "--name", demo, "-o", str(out))
    assert proc.returncode == 1 and "graphviz" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
    assert netlab_with_path(str(tmp_path), "graph", "--name", demo, "--format", "dot").returncode == 0


def netlab_with_path(path: str, *args: str):
    """netlab with PATH holding no Graphviz (the interpreter is started by its full path)."""
    old = os.environ["PATH"]
    os.environ["PATH"] = path
    try:
        return netlab(*args)
    finally:
        os.environ["PATH"] = old
