"""Checks for `netlab graph` output: dot through Graphviz, SVG as XML, mermaid by its structure."""
from __future__ import annotations

import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

SVG_NS = "{http://www.w3.org/2000/svg}"

MERMAID_NODE = re.compile(r'^(\w+)(\[".*"\]|>".*"\])$')
MERMAID_EDGE = re.compile(r'^(\w+) (---\|".*"\||-\. ".*" \.->|-\.-) (\w+)$')
MERMAID_SUBGRAPH = re.compile(r'^subgraph (\w+)\[".*"\]$')


def dot_to_svg(dot_text: str) -> str:
    """Graphviz's own parser and layout: raises when dot refuses the text."""
    proc = subprocess.run([shutil.which("dot") or "dot", "-Tsvg"], input=dot_text, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"dot -Tsvg exited {proc.returncode}: {proc.stderr}")
    return proc.stdout


def svg_texts(svg: str) -> list[str]:
    """Every <text> of a well-formed SVG document (ET raises on malformed XML)."""
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg", root.tag
    return ["".join(el.itertext()) for el in root.iter(f"{SVG_NS}text")]


def check_mermaid(text: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Parse netlab's mermaid flowchart line by line; every line must be one the grammar allows,
    subgraphs balanced, every edge between declared nodes. Returns nodes (id -> label) and edges."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines[0] == "flowchart TB", lines[0]
    nodes: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    classes: set[str] = set()
    depth = 0
    for line in lines[1:]:
        if (m := MERMAID_SUBGRAPH.match(line)):
            depth += 1
        elif line == "end":
            depth -= 1
            assert depth >= 0, "an `end` without its subgraph"
        elif (m := MERMAID_NODE.match(line)):
            assert m.group(1) not in nodes, f"node {m.group(1)} declared twice"
            assert m.group(1) != "end"
            label = m.group(2)
            assert label.count('"') == 2, f"a quote inside a label: {line}"
            nodes[m.group(1)] = label
        elif (m := MERMAID_EDGE.match(line)):
            assert line.count('"') in (0, 2), f"a quote inside an edge label: {line}"
            edges.append((m.group(1), m.group(3)))
        elif line.startswith("classDef "):
            classes.add(line.split()[1])
        elif line.startswith("class "):
            _, members, name = line.split()
            assert name in classes, f"class {name} used before classDef"
            assert all(member in nodes for member in members.split(",")), line
        else:
            raise AssertionError(f"not a line of netlab's mermaid grammar: {line!r}")
    assert depth == 0, "unbalanced subgraphs"
    for a, b in edges:
        assert a in nodes and b in nodes, f"edge {a} -> {b} between undeclared nodes"
    return nodes, edges
