"""The iproute2 script: the plan's kernel objects made the fastest way a shell script can.

Every `netns add` in one `ip -batch`, then one `ip -n NS -batch` per namespace, veth pairs
made from the bridge side straight into the pod, `bridge -n NODE -batch` for fdb entries and
hairpin, sysctls with `ip netns exec`; down is one `ip -batch` of `netns del` lines, for its
own namespaces only. Each step's line is its `describe()`, except for the kinds below that
need another shape in a batch.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from netlab.core.plan import Plan
from netlab.core.steps import Bridge, Ipip, Ipvlan, Macvlan, Sysctl, Veth
from netlab.kernel.inventory import Mark


@dataclass
class Script:
    up: Path
    down: Path
    namespaces: list[str]
    netns_del: Path     # the `netns del` batch: down.sh runs it, the benchmark's cleanup reads it


def iproute2_script(the_plan: Plan, workdir: Path) -> Script:
    """Shell scripts making the plan's kernel objects with iproute2 batches, and removing them."""
    lab = the_plan.lab.lab.name
    ip: dict[str, list[str]] = defaultdict(list)
    br: dict[str, list[str]] = defaultdict(list)
    sysctl: dict[str, list[str]] = defaultdict(list)
    pre: dict[str, list[str]] = defaultdict(list)
    lenient: set[str] = set()   # namespaces with an optional key: `sysctl -e` skips what the kernel lacks
    order = [ns.name for ns in the_plan.namespaces]
    position = {name: i for i, name in enumerate(order)}
    for ns in the_plan.namespaces:
        mark = Mark(lab, ns.role.value, ns.subject).text()
        ip[ns.name].append(f'link set dev lo alias "{mark}"')   # the same ownership mark netlab sets
        for step in ns.steps:
            if isinstance(step, Veth):
                # made from the peer's side, whose batch runs first: master and up in the same request
                if position[step.peer_netns] > position[ns.name]:
                    raise ValueError(f"{ns.name}: veth peer namespace {step.peer_netns} comes later in the plan")
                master = f" master {step.peer_master}" if step.peer_master else ""
                ip[step.peer_netns].append(
                    f"link add name {step.peer} mtu {step.mtu}{master} up type veth "
                    f"peer name {step.name} mtu {step.mtu} netns {ns.name}")
                if step.hairpin:
                    br[step.peer_netns].append(f"link set dev {step.peer} hairpin on")
            elif isinstance(step, Bridge):
                # describe() puts mtu after `type bridge`, where ip reads it as a bridge option
                ip[ns.name].append(f"link add name {step.name} mtu {step.mtu} type bridge")
            elif isinstance(step, Sysctl):
                sysctl[ns.name].append(f"{step.key.replace('/', '.')}={step.value}")
                if step.optional:
                    lenient.add(ns.name)
            elif isinstance(step, Ipip):
                # tunl0 may already be there (the ipip module's fallback): a shell `||`, not a batch line
                pre[ns.name].append(f"ip -n {ns.name} {step.describe().replace(' || ip ', f' || ip -n {ns.name} ')[3:]}")
            elif isinstance(step, (Macvlan, Ipvlan)) and step.parent_netns:
                # made in the parent's namespace (its batch runs first) and moved here by the same request
                ip[step.parent_netns].append(step.describe().removeprefix(f"ip -n {step.parent_netns} "))
            else:
                # every other step's description is one `ip` or `bridge` command: a batch line as it is
                text = step.describe()
                if text.startswith("ip "):
                    ip[ns.name].append(text.removeprefix("ip "))
                elif text.startswith("bridge "):
                    br[ns.name].append(text.removeprefix("bridge "))
                elif not text.startswith("#"):
                    raise TypeError(f"the benchmark has no iproute2 line for {step!r}")
    batches = workdir / "batches"
    batches.mkdir(parents=True, exist_ok=True)
    (batches / "netns-add").write_text("".join(f"netns add {n}\n" for n in order))
    (batches / "netns-del").write_text("".join(f"netns del {n}\n" for n in reversed(order)))
    lines = ["#!/bin/sh", "set -e", f"d={batches}", "ip -batch $d/netns-add"]
    for i, name in enumerate(order):
        lines += pre[name]
        (batches / f"{i}.ip").write_text("\n".join(ip[name]) + "\n")
        lines.append(f"ip -n {name} -batch $d/{i}.ip")
        if br[name]:
            (batches / f"{i}.br").write_text("\n".join(br[name]) + "\n")
            lines.append(f"bridge -n {name} -batch $d/{i}.br")
        if sysctl[name]:
            flags = "-q -e -w" if name in lenient else "-q -w"
            lines.append(f"ip netns exec {name} sysctl {flags} {' '.join(sysctl[name])}")
    up, down = workdir / "up.sh", workdir / "down.sh"
    up.write_text("\n".join(lines) + "\n")
    down.write_text(f"#!/bin/sh\nip -batch {batches}/netns-del\n")
    return Script(up, down, order, batches / "netns-del")
