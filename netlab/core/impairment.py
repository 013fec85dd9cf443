"""The `tc` command for a link impairment: netem, or tbf for a rate alone.

As containerlab's `tools netem`: the root qdisc of the interface is replaced — `netem` when a
delay, jitter or loss is asked (with netem's own `rate` when a rate is too), `tbf` for a rate
alone (tbf is in more kernels than netem: this development machine's has tbf and no netem).
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import names
from ..model.impairment import Impairment, bits_per_second
from ..model.lab import LabFile

TC = "tc"
QDISC_MODULES = {"netem": ("sch_netem", "CONFIG_NET_SCH_NETEM"), "tbf": ("sch_tbf", "CONFIG_NET_SCH_TBF")}
TBF_LATENCY = "50ms"     # how long a packet may wait in tbf's queue before it is dropped


def tc_burst(rate: str) -> int:
    """tbf's bucket: at least one timer tick's worth of bytes at the rate (HZ 100 in the worst
    case) and at least ten full frames, so the rate and not the bucket sets the pace."""
    rate_bits = bits_per_second(rate) or 0
    return max(rate_bits // 8 // 100, 10 * 1514)


def tc_argv(netns: str, iface: str, imp: Impairment) -> list[str]:
    """The `tc` command that puts `imp` on the root of `iface` in `netns` (replacing what is there)."""
    argv = [TC, "-n", netns, "qdisc", "replace", "dev", iface, "root"]
    if imp.qdisc == "netem":
        argv.append("netem")
        if imp.delay:
            argv += ["delay", imp.delay] + ([imp.jitter] if imp.jitter else [])
        if imp.loss:
            argv += ["loss", imp.loss]
        if imp.rate:
            argv += ["rate", imp.rate]
        return argv
    assert imp.rate, "an empty impairment is a clear, not a qdisc"
    return argv + ["tbf", "rate", imp.rate, "burst", str(tc_burst(imp.rate)), "latency", TBF_LATENCY]


def clear_argv(netns: str, iface: str) -> list[str]:
    return [TC, "-n", netns, "qdisc", "del", "dev", iface, "root"]


def describe(netns: str, iface: str, imp: Impairment) -> str:
    return " ".join(clear_argv(netns, iface) if imp.is_empty() else tc_argv(netns, iface, imp))





@dataclass(frozen=True)
class PlacedImpairment:
    """An impairment on one interface of one lab namespace."""

    netns: str
    interface: str
    impairment: Impairment
    target: str = ""            # as the user named it (node, or namespace/pod)


def target_netns(lab: LabFile, target: str) -> str | None:
    """The namespace of an impairment's target: a node, a pod as `namespace/name`, or a pod
    `name` that is unique in the lab; None when nothing (or more than one pod) matches."""
    if any(node.name == target for node in lab.lab.nodes):
        return names.node_netns(lab.lab.name, target)
    matches = [pod for pod in lab.pods if pod.key == target or ("/" not in target and pod.name == target)]
    return names.pod_netns(lab.lab.name, matches[0]) if len(matches) == 1 else None


def placed(lab: LabFile) -> list[PlacedImpairment]:
    """The lab file's impairments where they go (targets already checked by the loader)."""
    out = []
    for entry in lab.lab.impairments:
        netns = target_netns(lab, entry.target)
        if netns is not None:
            out.append(PlacedImpairment(netns, entry.interface or names.POD_IF, entry.impairment, entry.target))
    return out

