"""Tables for people (rich) and data for scripts (JSON). Never both on stdout."""
from __future__ import annotations

import os
import sys
from typing import Any, Mapping

from rich.console import Console
from rich.table import Table

from ..kernel import netns, procs
from ..ops import dns
from ..ops.record import LabRecord


def console() -> Console:
    """A console for stdout: the terminal's width, or wide enough that piped tables do not wrap."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def _sorted(mapping: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Objects show their keys sorted, as the state file stores them (and status always showed)."""
    return None if mapping is None else dict(sorted(mapping.items()))


def status_json(record: LabRecord) -> dict:
    """The contract's `status --json` object for one lab (more keys may be added)."""
    from . import wgstatus   # only labs with the wireguard backend read anything
    wireguard = wgstatus.of_record(record)
    data = {
        "name": record.name, "backend": record.backend,
        "status": "unknown" if record.status is None else record.status,
        "networking": _sorted(record.networking.to_json()), "mtu": record.mtu,
        "underlay": None if record.underlay is None else _sorted(record.underlay.to_json()),
        "nodes": [{"name": n.name, "netns": n.netns, "podCIDR": n.pod_cidr, "underlayIP": n.underlay_ip,
                   "rack": n.rack, "subnetEnv": _sorted(n.subnet_env),
                   "present": os.path.exists(netns.path(n.netns))} for n in record.nodes],
        "pods": [{"name": p.name, "namespace": p.namespace, "node": p.node, "ip": p.ip,
                  "netns": p.netns, "labels": _sorted(p.labels),
                  "present": os.path.exists(netns.path(p.netns)),
                  "containers": [{"name": c.container, "pid": c.pid, "running": procs.alive(c), "log": c.log}
                                 for c in p.containers]}
                 for p in record.pods],
        "policies": list(record.policies),   # NetworkPolicies enforced, namespace/name
        "impairments": [i.to_json() for i in record.impairments],   # tc netem/tbf on lab interfaces
        "services": [s.to_json() for s in record.services],   # Services with their EndpointSlices' endpoints
    }
    cluster_dns = dns_json(record)
    if cluster_dns is not None:   # only a lab with DNS pods has the key
        data["dns"] = cluster_dns
    if record.responder is not None:   # the one process serving every container with ports and no command
        rec = record.responder
        data["responder"] = {"pid": rec.pid, "running": procs.alive(rec), "log": rec.log,
                             "containers": sum(1 for c in record.containers if (c.pid, c.start) == (rec.pid, rec.start))}
    for node in data["nodes"]:
        if node["name"] in wireguard:
            node["wireguard"] = wireguard[node["name"]]
    if record.backend == "bgp":
        from . import bgp   # only bgp labs ask their BIRDs
        for node, found in zip(data["nodes"], bgp.lab_sessions(record).values()):
            node["bgp"] = {"running": found is not None,
                           "sessions": [s.to_json() for s in found or []]}
    return data


def dns_json(record: LabRecord) -> dict | None:
    """The cluster DNS of a lab: kube-dns's address, the zones served, each DNS pod (ready as its
    endpoint last was, knotd running now). None for a lab without DNS pods."""
    pods = dns.dns_pods(record.pods)
    if not pods:
        return None
    svc = next((s for s in record.services if s.key == dns.SERVICE), None)
    ready = {e.pod: e.ready for e in svc.endpoints} if svc else {}
    folder = dns.conf_dir(record.name)
    zones = sorted(f.name.removesuffix(".zone") for f in folder.glob("*.zone")) if folder.is_dir() else []
    return {"service": dns.SERVICE, "clusterIP": svc.cluster_ip if svc else None,
            "domain": record.networking.dns_domain, "server": "knotd", "zones": zones,
            "metrics": dns.METRICS_NOTE,
            "pods": [{"pod": p.key, "node": p.node, "ip": p.ip, "ready": ready.get(p.key, False),
                      "running": bool(p.containers) and all(procs.alive(c) for c in p.containers)} for p in pods]}


def print_labs(console: Console, records: list[LabRecord]) -> None:
    table = Table(title="labs")
    for col in ("lab", "backend", "status", "podSubnet", "serviceSubnet", "nodes", "pods"):
        table.add_column(col)
    for rec in records:
        table.add_row(rec.name, rec.backend, "?" if rec.status is None else rec.status,
                      rec.networking.pod_subnet, rec.networking.service_subnet, str(len(rec.nodes)),
                      str(len(rec.pods)))
    console.print(table)


def print_lab(console: Console, record: LabRecord) -> None:
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
    if any("wireguard" in n for n in data["nodes"]):
        print_wireguard(console, data["nodes"])
    pods = Table(title="pods")
    for col in ("pod", "node", "IP", "netns", "containers"):
        pods.add_column(col)
    for p in data["pods"]:
        conts = ", ".join(f"{c['name']}({'running' if c['running'] else '[red]stopped[/]'})"
                          for c in p["containers"]) or "-"
        pods.add_row(f"{p['namespace']}/{p['name']}", p["node"], p["ip"],
                     p["netns"] if p["present"] else f"[red]{p['netns']} (missing)[/]", conts)
    console.print(pods)
    responder = data.get("responder")
    if responder is not None:
        console.print(f"built-in responder: pid {responder['pid']}, serving {responder['containers']} containers' ports, "
                      + ("running" if responder["running"] else
                         "[red]not running: their containers are stopped; `netlab up` starts it again[/]"))
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
    if data["impairments"]:
        table = Table(title="impairments (tc)")
        for col in ("target", "netns", "interface", "delay", "jitter", "loss", "rate", "from"):
            table.add_column(col)
        for e in data["impairments"]:
            table.add_row(e.get("target", ""), e["netns"], e["interface"], e.get("delay", ""), e.get("jitter", ""),
                          e.get("loss", ""), e.get("rate", ""), "lab file" if e.get("source") == "file" else "netlab impair")
        console.print(table)
    if data["services"]:
        console.print(services_table(data["services"]))
    if "dns" in data:
        console.print(dns_table(data["dns"]))


def print_wireguard(console: Console, nodes: list[dict]) -> None:
    from .wgstatus import ago
    table = Table(title="wireguard (wg show flannel-wg dump)")
    for col in ("node", "implementation", "listen", "peer", "endpoint", "allowed ips", "latest handshake",
                "received", "sent"):
        table.add_column(col)
    for n in nodes:
        wg = n.get("wireguard")
        if wg is None:
            continue
        impl = wg["implementation"] + (f" (pid {wg['pid']})" if wg.get("pid") else "")
        if "error" in wg:
            table.add_row(n["name"], impl, "", f"[red]{wg['error']}[/]", "", "", "", "", "")
            continue
        for i, p in enumerate(wg["peers"] or [{}]):
            table.add_row(n["name"] if i == 0 else "", impl if i == 0 else "", str(wg["listenPort"]) if i == 0 else "",
                          p.get("node") or (p.get("publicKey", "")[:10] + "…" if p else "-"), p.get("endpoint", ""),
                          p.get("allowedIPs", ""), ago(p["latestHandshake"]) if p else "",
                          f"{p['rxBytes']} B" if p else "", f"{p['txBytes']} B" if p else "")
    console.print(table)


def services_table(services: list[dict]) -> Table:
    table = Table(title="services")
    for col in ("service", "type", "ClusterIP", "ports", "endpoints"):
        table.add_column(col)
    for svc in services:
        ports = ", ".join(f"{p['name'] + ' ' if p['name'] else ''}{p['port']}"
                          f"{':' + str(p['nodePort']) if p['nodePort'] else ''}/{p['protocol']}"
                          f"→{p['targetPort']}" for p in svc["ports"])
        eps = ", ".join(f"{e['ip']} ({e['pod']})" + ("" if e["ready"] else " [red]not ready[/]")
                        for e in svc["endpoints"])
        table.add_row(f"{svc['namespace']}/{svc['name']}", svc["type"], svc.get("clusterIP") or "-", ports,
                      eps or svc.get("note") or "[yellow]none: connections are refused[/]")
    return table


def dns_table(info: dict) -> Table:
    reverse = [z for z in info["zones"] if z.endswith(".in-addr.arpa")]
    zones = ", ".join(z for z in info["zones"] if z not in reverse) or "no zones yet"
    if reverse:
        zones += f" and {len(reverse)} reverse zone{'s' if len(reverse) != 1 else ''}"
    table = Table(title=f"cluster DNS: {info['service']} {info['clusterIP'] or '(no Service)'}, "
                        f"{info['server']} serving {zones}", caption=info["metrics"])
    for col in ("DNS pod", "node", "IP", "endpoint", "knotd"):
        table.add_column(col)
    for p in info["pods"]:
        table.add_row(p["pod"], p["node"], p["ip"], "ready" if p["ready"] else "[red]not ready[/]",
                      "running" if p["running"] else "[red]stopped[/]")
    return table
