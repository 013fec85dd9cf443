"""Do both builds hold the same kernel objects? A sample of namespaces, compared with `ip -j`."""
from __future__ import annotations

import json
import re
import subprocess

from netlab.core.plan import Plan, Role

from .measure import lab_namespaces

VETH_NAME = re.compile(r"^veth[0-9a-f]{8}$")


def _ipj(ns: str, *args: str, tool: str = "ip") -> list:
    out = subprocess.run([tool, "-n", ns, "-j", "-d", *args], capture_output=True, text=True).stdout
    try:
        return json.loads(out or "[]")
    except json.JSONDecodeError:
        return []


def _norm(ifname: str | None) -> str:
    return "veth*" if ifname and VETH_NAME.match(ifname) else str(ifname)


def shape(ns: str, lab: str) -> dict:
    """What one namespace holds, with names that embed the lab (veth hashes, MACs) left out."""
    links = _ipj(ns, "link", "show")
    addrs = _ipj(ns, "-4", "address", "show")
    routes = _ipj(ns, "-4", "route", "show", "table", "all")
    neigh = _ipj(ns, "neigh", "show", "nud", "permanent")
    fdb = [f for f in _ipj(ns, "fdb", "show", tool="bridge") if "dst" in f]
    ports = _ipj(ns, "link", "show", tool="bridge")
    alias = next((l.get("ifalias", "") for l in links if l.get("ifname") == "lo"), "")
    sysctls = {}
    if not ns.count(".") > 1:   # vpc and nodes carry sysctls; pods none
        for key in ("net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables"):
            out = subprocess.run(["ip", "netns", "exec", ns, "cat", f"/proc/sys/{key}"],
                                 capture_output=True, text=True).stdout.strip()
            sysctls[key] = out
    return {
        "links": sorted((_norm(l.get("ifname")), l.get("linkinfo", {}).get("info_kind", ""), l.get("mtu"),
                         _norm(l.get("master")), "UP" in l.get("flags", [])) for l in links),
        "addresses": sorted((_norm(a.get("ifname")), i.get("local"), i.get("prefixlen"))
                            for a in addrs for i in a.get("addr_info", []) if i.get("family") == "inet"),
        "routes": sorted((r.get("table", "main"), r.get("type", "unicast"), r.get("dst"), r.get("gateway", ""),
                          _norm(r.get("dev")), tuple(sorted(r.get("flags", [])))) for r in routes),
        "neighbours": sorted((n.get("dst"), _norm(n.get("dev"))) for n in neigh),
        "fdb": sorted((f.get("dst"), _norm(f.get("ifname"))) for f in fdb),
        "hairpin": sorted(_norm(p.get("ifname")) for p in ports if p.get("hairpin")),
        "mark": alias.replace(lab, "LAB"),
        "sysctls": sysctls,
    }


def sample(the_plan: Plan) -> list[str]:
    """Namespace names (relative to the lab) worth comparing: vpc, first and last node, three pods."""
    spaces = the_plan.namespaces
    nodes = [ns for ns in spaces if ns.role is Role.NODE]
    pods = [ns for ns in spaces if ns.role is Role.POD]
    picked = [spaces[0], nodes[0], nodes[-1]] + ([pods[0], pods[len(pods) // 2], pods[-1]] if pods else [])
    lab = the_plan.lab.lab.name
    return list(dict.fromkeys(ns.name[len(lab) + 1:] for ns in picked))


def totals(shapes: list[dict]) -> dict[str, int]:
    keys = ("links", "addresses", "routes", "neighbours", "fdb", "hairpin")
    return {k: sum(len(s[k]) for s in shapes) for k in keys}


def compare(plan_n: Plan, plan_i: Plan, names: dict[str, str]) -> dict:
    """Both builds, namespace by namespace over a sample: the same objects?"""
    lab_n, lab_i = names["netlab"], names["iproute2"]
    shapes_n, shapes_i, differ = [], [], []
    for rel in sample(plan_n):
        a, b = shape(f"{lab_n}.{rel}", lab_n), shape(f"{lab_i}.{rel}", lab_i)
        shapes_n.append(a)
        shapes_i.append(b)
        for key in a:
            if a[key] != b[key]:
                differ.append({"namespace": rel, "what": key, "netlab": a[key], "iproute2": b[key]})
    return {"sampled": sample(plan_n),
            "namespaces": {"netlab": len(lab_namespaces(lab_n)), "iproute2": len(lab_namespaces(lab_i))},
            "objects": {"netlab": totals(shapes_n), "iproute2": totals(shapes_i)},
            "equivalent": not differ and len(lab_namespaces(lab_n)) == len(lab_namespaces(lab_i)),
            "differences": differ[:10]}
