"""A Topology as text: Graphviz dot and mermaid flowcharts, written by netlab (pure).

dot: one HTML-table node per box with a port per interface, clusters per node and per
Kubernetes namespace; `dot -Tsvg` (Graphviz) lays it out. mermaid: a flowchart with the
same grouping, edges labelled with the veth, the VXLAN outer destination or the route.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass

from .topology import Box, Iface, Topology

EDGE_STYLE = {"veth": 'color="#444444"', "macvlan": 'color="#2b7a0b"', "ipvlan": 'color="#2b7a0b"',
              "vxlan": 'color="#c0392b" style=dashed penwidth=2', "route": 'color="#1f5fa8" style=dashed'}
FILL = {"vpc": "#fdf2d0", "node": "#dde8f7", "pod": "#e6f4e1"}


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _port(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _iface_row(iface: Iface) -> str:
    detail = ", ".join(iface.addresses) or ""
    bits = [f"<b>{html.escape(iface.name)}</b> <font point-size=\"9\">{html.escape(iface.kind)} mtu {iface.mtu}"
            f"{'' if iface.up else ' DOWN'}</font>"]
    if detail:
        bits.append(f"<font point-size=\"9\">{html.escape(detail)}</font>")
    if iface.extra:
        bits.append(f"<font point-size=\"9\">{html.escape(iface.extra)}</font>")
    return f'<tr><td port="{_port(iface.name)}" align="left">{"<br/>".join(bits)}</td></tr>'


def _box_label(box: Box) -> str:
    title = html.escape(box.label)
    sub = html.escape(box.ip or "") if box.kind == "pod" else html.escape(box.netns)
    rows = [f'<tr><td bgcolor="{FILL[box.kind]}"><b>{title}</b><br/><font point-size="9">{sub}</font></td></tr>']
    rows += [_iface_row(i) for i in box.ifaces]
    return f'<<table border="0" cellborder="1" cellspacing="0" cellpadding="3">{"".join(rows)}</table>>'


@dataclass(frozen=True)
class PathStep:
    """A packet crossing from one box to another, drawn over the picture (`netlab trace --svg`)."""
    src: str
    dst: str
    label: str
    seen: bool


def to_dot(topo: Topology, path: list[PathStep] | tuple[PathStep, ...] = ()) -> str:
    out = [f"digraph {_q('netlab ' + topo.lab)} {{",
           f'  graph [rankdir=TB compound=true fontname="Helvetica" label={_q(f"lab {topo.lab} ({topo.backend})")} '
           'labelloc=t];',
           '  node [shape=plain fontname="Helvetica" fontsize=10];',
           '  edge [fontname="Helvetica" fontsize=9 dir=none];']
    vpc = topo.box("vpc")
    if vpc is not None:
        out.append(f"  {_q(vpc.id)} [label={_box_label(vpc)}];")
    nodes = [b for b in topo.boxes if b.kind == "node"]
    pods = [b for b in topo.boxes if b.kind == "pod"]
    for n, node in enumerate(nodes):
        out.append(f"  subgraph cluster_node_{n} {{")
        out.append(f'    label={_q(node.node or node.label)}; style="rounded"; color="#7f8fa6";')
        out.append(f"    {_q(node.id)} [label={_box_label(node)}];")
        mine = [p for p in pods if p.node == node.node]
        for k, namespace in enumerate(sorted({p.namespace or "" for p in mine})):
            out.append(f"    subgraph cluster_node_{n}_ns_{k} {{")
            out.append(f'      label={_q("namespace " + namespace)}; style="dashed"; color="#9aa5b1";')
            for pod in (p for p in mine if p.namespace == namespace):
                out.append(f"      {_q(pod.id)} [label={_box_label(pod)}];")
            out.append("    }")
        out.append("  }")
    for pod in pods:   # pods whose node is not in the record still appear
        if not any(pod.node == n.node for n in nodes):
            out.append(f"  {_q(pod.id)} [label={_box_label(pod)}];")
    ports = {b.id: {i.name for i in b.ifaces} for b in topo.boxes}
    between = {(e.src, e.dst, e.kind): e for e in topo.edges if e.kind in ("vxlan", "route")}
    for edge in topo.edges:
        src = _end(edge.src, edge.src_if, ports)
        dst = _end(edge.dst, edge.dst_if, ports)
        if edge.kind in ("vxlan", "route"):
            back = between.get((edge.dst, edge.src, edge.kind))
            if back is not None and (edge.dst, edge.src) < (edge.src, edge.dst):
                continue   # drawn with its reverse: one line, both directions
            label = f"{_short(edge.src)}: {edge.label}"
            if back is not None:
                label += f"\n{_short(back.src)}: {back.label}"
            out.append(f"  {src} -> {dst} [label={_q(label)} "
                       f"{EDGE_STYLE[edge.kind]} dir={'both' if back else 'forward'} constraint=false];")
        else:   # drawn from the upper layer down: VPC above nodes above pods
            out.append(f"  {dst} -> {src} [label={_q(edge.label)} {EDGE_STYLE.get(edge.kind, '')}];")
    for step in path:
        colour = "#d35400" if step.seen else "#7f8c8d"
        out.append(f"  {_q(step.src)} -> {_q(step.dst)} [label={_q(step.label)} color={_q(colour)} "
                   f"fontcolor={_q(colour)} penwidth=3 dir=forward constraint=false"
                   f"{'' if step.seen else ' style=dashed'}];")
    for note in topo.notes:
        text = "\n".join([f"{note.kind} {note.title}", *note.lines])
        out.append(f'  {_q(note.id)} [shape=note style=filled fillcolor="#fff7c2" fontsize=9 label={_q(text)}];')
        for target in note.attach:
            if topo.box(target) is not None:
                out.append(f'  {_q(note.id)} -> {_q(target)} [style=dotted color="#8a6d00"];')
    out.append("}")
    return "\n".join(out) + "\n"


def _short(box_id: str) -> str:
    return box_id.split(":", 1)[-1]


def _end(box_id: str, iface: str, ports: dict[str, set[str]]) -> str:
    if iface in ports.get(box_id, set()):
        return f"{_q(box_id)}:{_port(iface)}"
    return _q(box_id)


def _mid(box_id: str) -> str:
    return "n_" + re.sub(r"[^A-Za-z0-9_]", "_", box_id)


def _mtext(text: str) -> str:
    return text.replace('"', "#quot;")


def _mbox(box: Box) -> str:
    lines = [f"<b>{box.label}</b>", box.ip if box.kind == "pod" and box.ip else box.netns]
    for iface in box.ifaces:
        lines.append(f"{iface.name} ({iface.kind}) {' '.join(iface.addresses)}".strip())
    return f'{_mid(box.id)}["{_mtext("<br/>".join(lines))}"]'


def to_mermaid(topo: Topology) -> str:
    out = ["flowchart TB"]
    vpc = topo.box("vpc")
    if vpc is not None:
        out.append(f"  {_mbox(vpc)}")
    nodes = [b for b in topo.boxes if b.kind == "node"]
    pods = [b for b in topo.boxes if b.kind == "pod"]
    for n, node in enumerate(nodes):
        out.append(f'  subgraph g_node_{n}["{_mtext(node.node or node.label)}"]')
        out.append(f"    {_mbox(node)}")
        mine = [p for p in pods if p.node == node.node]
        for k, namespace in enumerate(sorted({p.namespace or "" for p in mine})):
            out.append(f'    subgraph g_node_{n}_ns_{k}["namespace {_mtext(namespace)}"]')
            for pod in (p for p in mine if p.namespace == namespace):
                out.append(f"      {_mbox(pod)}")
            out.append("    end")
        out.append("  end")
    for pod in pods:
        if not any(pod.node == n.node for n in nodes):
            out.append(f"  {_mbox(pod)}")
    for edge in topo.edges:
        label = _mtext(f"{edge.src_if} — {edge.dst_if}: {edge.label}")
        arrow = f'-. "{label}" .->' if edge.kind in ("vxlan", "route") else f'---|"{label}"|'
        out.append(f"  {_mid(edge.src)} {arrow} {_mid(edge.dst)}")
    for note in topo.notes:
        text = _mtext("<br/>".join([f"{note.kind} {note.title}", *note.lines]))
        out.append(f'  {_mid(note.id)}>"{text}"]')
        for target in note.attach:
            if topo.box(target) is not None:
                out.append(f"  {_mid(note.id)} -.- {_mid(target)}")
    for kind in ("vpc", "node", "pod"):
        members = [_mid(b.id) for b in topo.boxes if b.kind == kind]
        if members:
            out.append(f"  classDef k{kind} fill:{FILL[kind]},stroke:#555")
            out.append(f"  class {','.join(members)} k{kind}")
    return "\n".join(out) + "\n"
