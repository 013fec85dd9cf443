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
    """A pod or node a user named, found in a lab that is up: its network namespace, IP and lab record."""

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
    from ..kernel.inventory import Mark, read_mark   # lazily: only for the commands that enter a namespace
    role = "pod" if target.kind == "pod" else "node"
    mark = Mark.parse(read_mark(target.netns))
    if mark is None and target.netns in netns.listed():
        pass   # there, without a mark: refused below
    elif mark is None:
        raise NetlabError(f"{target.kind} {target.name}'s namespace {target.netns} is gone: "
                          f"run `netlab up` again to rebuild lab {target.lab!r}")
    if mark != Mark(target.lab, role, target.name):
        raise NetlabError(f"/run/netns/{target.netns} does not carry the mark of lab {target.lab!r}'s {role} "
                          f"{target.name}: not netlab's to enter (is the state file stale? `netlab up` again)")


def resolve_service(text: str, record: LabRecord, port: int | None,
                    protocol: str | None) -> tuple[Target, int, str] | None:
    """A Service as `namespace/name`, `name` (when unique), `svc/namespace/name` or `ClusterIP:port`,
    with the port asked (or its only port): (target, Service port, protocol); None when `text`
    names no Service of the lab."""
    name = text.removeprefix("svc/")
    if ":" in name:
        host, _, number = name.rpartition(":")
        if not number.isdigit():
            raise InputError(f"{text!r}: a Service address is ClusterIP:port")
        found = [s for s in record.services if s.cluster_ip == host]
        port = port if port is not None else int(number)
        if port != int(number):
            raise InputError(f"{text!r} and --port {port} disagree")
    else:
        found = [s for s in record.services if name in (s.key, s.name)]
    if not found:
        if text.startswith("svc/") or ":" in text:
            known = ", ".join(sorted(f"{s.key} ({s.cluster_ip})" for s in record.services)) or "none"
            raise InputError(f"no Service {text!r} in lab {record.name!r}; known: {known}")
        return None
    if len(found) > 1:
        raise InputError(f"{text!r} is ambiguous: {', '.join(s.key for s in found)}; write namespace/name")
    (svc,) = found
    if not svc.cluster_ip or svc.cluster_ip == "None":
        raise InputError(f"Service {svc.key} has no ClusterIP ({svc.type}, headless or ExternalName): "
                         "trace to one of its pods instead")
    if protocol == "ICMP":
        raise InputError(f"Service {svc.key}: kube-proxy forwards TCP and UDP, not icmp; "
                         "use --protocol tcp or udp")
    ports = [p for p in svc.ports if (port is None or p.port == port) and (protocol is None or p.protocol == protocol)
             and p.protocol in ("TCP", "UDP")]
    if len(ports) != 1:
        have = ", ".join(f"{p.port}/{p.protocol}" for p in svc.ports) or "none"
        what = "no port matches" if not ports else "several ports match"
        raise InputError(f"Service {svc.key}: {what}; pick one with --port/--protocol (it has {have})")
    (chosen,) = ports
    target = Target(record.name, "service", f"svc/{svc.key}", "", ip_address(svc.cluster_ip), record)
    return target, chosen.port, chosen.protocol
