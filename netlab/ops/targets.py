"""Names users type (pod, namespace/pod, node, IP) resolved against the labs that are up."""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address

from . import state
from .record import LabRecord
from ..errors import InputError, NetlabError
from ..kernel import netns


@dataclass(frozen=True)
class Target:
    lab: str
    kind: str        # "pod" or "node"
    name: str        # namespace/name for pods, node name for nodes
    netns: str
    ip: IPv4Address
    record: LabRecord


def load_lab(name: str | None) -> LabRecord:
    """The state record of lab `name`, or of the only lab that is up."""
    if name:
        record = state.load(name)
        if record is None:
            raise NetlabError(f"no lab named {name!r} is up (see `netlab status`)")
        return record
    names = state.labs()
    if not names:
        raise NetlabError("no lab is up: start one with `netlab up [FILE]`")
    if len(names) > 1:
        raise InputError(f"several labs are up ({', '.join(names)}): pick one with --name")
    record = state.load(names[0])
    if record is None:
        raise NetlabError(f"lab {names[0]!r} has no readable state (see `netlab status`)")
    return record


def resolve(text: str, lab: str | None, *, allow_ip: bool = False) -> Target:
    """A pod as `name` (when unique) or `namespace/name`, a node by name, or (allow_ip) an IP."""
    records = [state.load(lab)] if lab else [state.load(n) for n in state.labs()]
    records = [r for r in records if r]
    if lab and not records:
        raise NetlabError(f"no lab named {lab!r} is up (see `netlab status`)")
    if not records:
        raise NetlabError("no lab is up: start one with `netlab up [FILE]`")
    found: list[Target] = []
    for rec in records:
        for pod in rec.pods:
            if text in (pod.key, pod.name):
                found.append(Target(rec.name, "pod", pod.key, pod.netns, ip_address(pod.ip), rec))
        for node in rec.nodes:
            if text == node.name:
                found.append(Target(rec.name, "node", node.name, node.netns, ip_address(node.underlay_ip), rec))
    if allow_ip and not found:
        try:
            addr = ip_address(text)
        except ValueError:
            addr = None
        if addr is not None:
            rec = records[0] if len(records) == 1 else None
            if rec is None:
                raise InputError(f"{text} is an address, but several labs are up: pick one with --name")
            return Target(rec.name, "ip", text, "", addr, rec)  # type: ignore[arg-type]
    if not found:
        known = sorted({p.key for r in records for p in r.pods} | {n.name for r in records for n in r.nodes})
        raise InputError(f"no pod or node named {text!r}; known: {', '.join(known[:20])}"
                         + (" ..." if len(known) > 20 else ""))
    if len(found) > 1:
        options = ", ".join(f"{t.name} (lab {t.lab})" for t in found)
        raise InputError(f"{text!r} is ambiguous: {options}; write namespace/name or use --name")
    return found[0]


def check_owned(target: Target) -> None:
    """Before entering a target's namespace: it must carry the mark of the target's lab, role and
    subject (the state file only names it; the kernel says whose it is)."""
    from ..kernel.apply import Kernel   # lazily: pyroute2 only for the commands that enter a namespace
    from ..kernel.inventory import Mark
    role = "pod" if target.kind == "pod" else "node"
    with Kernel() as kernel:
        mark = Mark.parse(kernel.read_mark(target.netns))
    if mark is None and target.netns in netns.listed():
        pass   # there, without a mark: refused below
    elif mark is None:
        raise NetlabError(f"{target.kind} {target.name}'s namespace {target.netns} is gone: "
                          f"run `netlab up` again to rebuild lab {target.lab!r}")
    if mark != Mark(target.lab, role, target.name):
        raise NetlabError(f"/run/netns/{target.netns} does not carry the mark of lab {target.lab!r}'s {role} "
                          f"{target.name}: not netlab's to enter (is the state file stale? `netlab up` again)")

