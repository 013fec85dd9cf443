"""A snapshot of the root network namespace: what the suite must leave unchanged."""
from __future__ import annotations

import json
import os
import subprocess


def _run(argv: list[str]) -> str:
    """A tool's output; a missing tool fails the snapshot (an empty comparison proves nothing)."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    if proc.returncode != 0:
        raise RuntimeError(f"host snapshot: `{' '.join(argv)}` failed: {proc.stderr.strip()}")
    return proc.stdout


def _ip_json(*args: str) -> list:
    out = _run(["ip", "-j", *args])
    try:
        data = json.loads(out or "[]")
    except json.JSONDecodeError:
        return [out]
    for item in data:   # counters and timers move on their own
        for key in ("stats", "stats64", "used", "updated", "confirmed", "age"):
            item.pop(key, None)
    return data


def _sysctls() -> dict[str, str]:
    keys = ["net/ipv4/ip_forward", "net/ipv4/conf/all/forwarding", "net/ipv6/conf/all/forwarding",
            "net/bridge/bridge-nf-call-iptables", "net/ipv4/conf/all/rp_filter"]
    out = {}
    for key in keys:
        try:
            with open(f"/proc/sys/{key}") as f:
                out[key] = f.read().strip()
        except OSError:
            out[key] = "<absent>"
    return out


def snapshot() -> dict[str, object]:
    return {
        "links": [(l.get("ifname"), l.get("flags"), l.get("mtu"), l.get("master"), l.get("address"))
                  for l in _ip_json("link", "show")],
        "addresses": [(a.get("ifname"), [(i.get("local"), i.get("prefixlen")) for i in a.get("addr_info", [])])
                      for a in _ip_json("addr", "show")],
        "routes": _ip_json("route", "show", "table", "all"),
        "rules": _ip_json("rule", "show"),
        "nft": _run(["nft", "list", "ruleset"]),
        "iptables": "\n".join(l for l in _run(["iptables-save"]).splitlines() if not l.startswith("#")),
        "sysctls": _sysctls(),
        # labs' namespaces are named <lab>.<...>: this run's are checked by leftovers(), other
        # runs' (a developer's labs, a concurrent suite) are theirs; every other name must stay
        "netns": sorted(n for n in (os.listdir("/run/netns") if os.path.isdir("/run/netns") else [])
                        if "." not in n),
    }


def leftovers(tag: str) -> list[str]:
    """Namespaces and lab processes of this test run (labs named tag...) still present."""
    found = [f"netns {n}" for n in (os.listdir("/run/netns") if os.path.isdir("/run/netns") else [])
             if n.startswith(tag)]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if f"NETLAB_LAB={tag}".encode() in env:
            found.append(f"process {entry}")
    return found
