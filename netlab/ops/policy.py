"""Policies of a running lab: `netlab apply` rewrites them; `explain` reloads what was applied.

A lab's NetworkPolicies are not part of its namespaces' fingerprints, so changing them
rebuilds nothing: apply checks that the file describes the lab that runs (same nodes,
pods and addresses), then rewrites each node's nft table in one transaction.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from ..core import ipam, plan
from . import dns, lab as lab_ops, services, state
from .record import LabRecord
from ..spec import loader
from ..kernel.apply import Kernel
from ..kernel.privileges import require_privileges
from .. import names
from ..errors import NetlabError
from ..kernel.inventory import owned
from ..model.lab import LabFile
from ..kernel import policy as enforce


@dataclass(frozen=True)
class Applied:
    """What `netlab apply` did: the policies now in force, those added and removed, on how many nodes,
    in how many seconds."""

    lab: str
    policies: tuple[str, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    nodes: int
    seconds: float


def apply_file(lab: LabFile) -> Applied:
    """Converge the policies of the running lab `lab` names; nothing else is touched."""
    started = time.perf_counter()
    the_plan = lab_ops.make_plan(lab)
    require_privileges("apply")
    enforce.check_features(lab)
    services.check_tools(lab)
    name = lab.lab.name
    not_up = NetlabError(f"lab {name!r} is not up: build it with `netlab up {lab.source}`")
    if state.load(name) is None:
        raise not_up    # before locking: the lock would leave a directory for a lab that is not there
    with state.locked(name), Kernel() as kernel:
        record = state.load(name)
        if record is None:
            state.remove(name)   # taken down while we waited; drop the lock directory we made
            raise not_up
        differences = topology_differences(the_plan, record, set(owned(kernel, name)))
        if differences:
            raise NetlabError(
                f"lab {name!r} runs other nodes or pods than {lab.source} describes ({'; '.join(differences)}): "
                f"`netlab apply` changes NetworkPolicies and Services only — run `netlab up {lab.source}` to converge "
                "the whole lab")
        before = record.policies
        enforced = enforce.converge(lab, the_plan.alloc, record.policies, record.policy_nodes)
        if enforced is not None:
            # per node: nft -f is atomic per node, so a node nft refused keeps its previous rules
            record = record.with_enforced(enforced.policies, enforced.digest, enforced.held, enforced.complete)
        proxied = services.converge(lab, the_plan.alloc, record)
        if proxied is not None:
            record = replace(record, services=proxied)
        labels = {pod.key: pod.labels for pod in lab.pods}
        record = replace(record, pods=tuple(replace(pod, labels=labels[pod.key]) for pod in record.pods),
                         source=_source(lab), updated=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        state.save(name, record)
        dns.converge(record)   # the zones follow the Services and their endpoints; each knotd reloads
    if enforced is not None and not enforced.complete:
        raise NetlabError(enforce.failure(enforced, before, lab.source, "apply"))
    now = tuple(p.key for p in lab.policies)
    return Applied(name, now, tuple(k for k in now if k not in before), tuple(k for k in before if k not in now),
                   len(the_plan.alloc.nodes), time.perf_counter() - started)


def topology_differences(the_plan: plan.Plan, record: LabRecord, present: set[str]) -> list[str]:
    """How the running lab differs from the plan of a file, in words; empty when it is the same."""
    out: list[str] = []
    if record.status != "ready":
        out.append(f"its last `netlab up` did not finish (status {record.status or 'unknown'})")
    recorded = record.fingerprints
    planned = {ns.name: ns for ns in the_plan.namespaces}
    for ns in the_plan.namespaces:
        what = f"{ns.role.value} {ns.subject}"
        if ns.name not in recorded:
            out.append(f"{what} is not in the running lab")
        elif recorded[ns.name] != ns.fingerprint:
            out.append(f"{what} differs")
        elif ns.name not in present:
            out.append(f"{what} is missing from the kernel")
    for ns_name, info in record.namespaces.items():
        if ns_name not in planned:
            out.append(f"{info.role} {info.subject} is not in the file")
    return out


def _source(lab: LabFile) -> str:
    return lab.source if lab.source.startswith("<") else os.path.abspath(lab.source)


@dataclass(frozen=True)
class AppliedFile:
    """The lab file a running lab was last built or applied from, and whether it still matches."""

    lab: LabFile
    stale: bool


def applied_file(record: LabRecord) -> AppliedFile:
    """Reload the running lab's file; `stale` when its policies are not the ones enforced."""
    source = record.source
    if source == "<default lab>":
        labfile = loader.load_file(None)
    elif source.startswith("<") or not source:
        raise NetlabError(f"lab {record.name!r} was built from {source or 'an unknown source'}, not a file: "
                          "run `netlab apply FILE` with its file first")
    elif not os.path.exists(source):
        raise NetlabError(f"{source}, the file lab {record.name!r} was built from, is gone: "
                          "run `netlab apply FILE` with its new path")
    else:
        labfile = loader.load_file(source)
    alloc = ipam.allocate(labfile)
    node_netns = {name: names.node_netns(labfile.lab.name, name) for name in alloc.nodes}
    digest = enforce.digest(enforce.rulesets(labfile, alloc.pod_ips, node_netns)) if labfile.policies else None
    return AppliedFile(labfile, digest != record.policy_digest)
