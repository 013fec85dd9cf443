"""Tables for people (rich) and data for scripts (JSON). Never both on stdout."""
from __future__ import annotations

import os
import sys

from rich.console import Console
from rich.table import Table

from ..kernel import netns, procs


def console() -> Console:
    """A console for stdout: the terminal's width, or wide enough that piped tables do not wrap."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def status_json(record: dict) -> dict:
    """The contract's `status --json` object for one lab (more keys may be added)."""
    data = _status_json(record)
    if record.get("backend") == "bgp":
        from . import bgp   # only bgp labs ask their BIRDs
        for node, found in zip(data["nodes"], bgp.lab_sessions(record).values()):
            node["bgp"] = {"running": found is not None,
                           "sessions": [s.to_json() for s in found or []]}
    return data


def _status_json(record: dict) -> dict:
    return {
        "name": record["name"], "backend": record["backend"], "status": record.get("status", "unknown"),
        "networking": record["networking"], "mtu": record.get("mtu"), "underlay": record.get("underlay"),
        "nodes": [{"name": n["name"], "netns": n["netns"], "podCIDR": n["podCIDR"],
                   "underlayIP": n["underlayIP"], "rack": n.get("rack"), "subnetEnv": n.get("subnetEnv"),
                   "present": os.path.exists(netns.path(n["netns"]))} for n in record.get("nodes", [])],
        "pods": [{"name": p["name"], "namespace": p["namespace"], "node": p["node"], "ip": p["ip"],
                  "netns": p["netns"], "labels": p.get("labels", {}),
                  "present": os.path.exists(netns.path(p["netns"])),
                  "containers": [{"name": c["container"], "pid": c["pid"],
                                  "running": procs.alive(procs.ProcRecord(**c)), "log": c["log"]}
                                 for c in p.get("containers", [])]}
                 for p in record.get("pods", [])],
        "policies": record.get("policies", []),   # NetworkPolicies enforced, namespace/name
    }


def print_labs(console: Console, records: list[dict]) -> None:
    table = Table(title="labs")
    for col in ("lab", "backend", "status", "podSubnet", "serviceSubnet", "nodes", "pods"):
        table.add_column(col)
    for rec in records:
        table.add_row(rec["name"], rec["backend"], rec.get("status", "?"), rec["networking"]["podSubnet"],
                      rec["networking"]["serviceSubnet"], str(len(rec.get("nodes", []))),
                      str(len(rec.get("pods", []))))
    console.print(table)


def print_lab(console: Console, record: dict) -> None:
    data = status_json(record)
    net = data["networking"]
    console.print(f"[bold]lab {data['name']}[/]  backend {data['backend']}  status {data['status']}  "
                  f"podSubnet {net['podSubnet']}  serviceSubnet {net['serviceSubnet']}  "
                  f"dnsDomain {net['dnsDomain']}  pod MTU {data['mtu']}")
    nodes = Table(title="nodes")
    for col in ("node", "netns", "underlay IP", "rack", "podCIDR", "cni0", "FLANNEL_SUBNET"):
        nodes.add_column(col)
    for n in data["nodes"]:
        env = n.get("subnetEnv") or {}
        gateway = env.get("FLANNEL_SUBNET", "")
        nodes.add_row(n["name"], n["netns"] if n["present"] else f"[red]{n['netns']} (missing)[/]",
                      n["underlayIP"], n.get("rack") or "", n["podCIDR"], gateway.split("/")[0], gateway)
    console.print(nodes)
    pods = Table(title="pods")
    for col in ("pod", "node", "IP", "netns", "containers"):
        pods.add_column(col)
    for p in data["pods"]:
        conts = ", ".join(f"{c['name']}({'running' if c['running'] else '[red]stopped[/]'})"
                          for c in p["containers"]) or "-"
        pods.add_row(f"{p['namespace']}/{p['name']}", p["node"], p["ip"],
                     p["netns"] if p["present"] else f"[red]{p['netns']} (missing)[/]", conts)
    console.print(pods)
    if any("bgp" in n for n in data["nodes"]):
        sessions = Table(title="BGP sessions (birdc show protocols)")
        for col in ("node", "protocol", "peer", "state", "routes received", "since"):
            sessions.add_column(col)
        for n in data["nodes"]:
            if not n["bgp"]["running"]:
                sessions.add_row(n["name"], "[red]bird not running[/]", "", "", "", "")
            for s in n["bgp"]["sessions"]:
                state = s["state"] if s["state"] == "Established" else f"[red]{s['state']}[/]"
                sessions.add_row(n["name"], s["protocol"], s["peer"], state, str(s["routes"]), s["since"])
        console.print(sessions)
    if data["policies"]:
        console.print("NetworkPolicies enforced: " + ", ".join(data["policies"]))
