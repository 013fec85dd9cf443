"""Link impairments applied, cleared and read back with `tc -n` inside a lab namespace.

The host's qdiscs are never read or changed. A missing qdisc module is named before anything
changes: netlab loads no module (see netlab.kernel.kernelmods).
"""
from __future__ import annotations

import json
import shutil
import subprocess

from ..core.impairment import QDISC_MODULES, TC, clear_argv, tc_argv
from ..model.impairment import Impairment, ms_text, rate_text
from ..errors import InputError, KernelFeatureMissing, NetlabError
from . import kernelmods, netns

TIMEOUT = 10


def check_features(imp: Impairment) -> None:
    """Fail before any change when tc or the qdisc's module is missing (never autoloaded)."""
    if imp.is_empty():
        return
    if shutil.which(TC) is None:
        raise KernelFeatureMissing("link impairments use `tc`, which is not installed: apt-get install iproute2")
    module, option = QDISC_MODULES[imp.qdisc]
    state = kernelmods.module_state(module)
    if state is kernelmods.ModuleState.LOADABLE:
        raise KernelFeatureMissing(
            f"{imp.summary()} needs the {imp.qdisc} qdisc, whose module {module} this kernel has but has not "
            f"loaded; netlab loads no module itself; nothing was changed — run `modprobe {module}` and retry")
    if state is kernelmods.ModuleState.UNKNOWN and not _qdisc_works(imp.qdisc):
        raise KernelFeatureMissing(
            f"this kernel has no {imp.qdisc} qdisc ({option}, module {module}), which {imp.summary()} needs; "
            "nothing was changed" + ("; a rate alone works with tbf: drop delay, jitter and loss"
                                     if imp.qdisc == "netem" else ""))


PROBES = {"netem": ["netem", "delay", "1ms"], "tbf": ["tbf", "rate", "1mbit", "burst", "15140", "latency", "50ms"]}


def _qdisc_works(kind: str) -> bool:
    """Try the qdisc on lo in a throwaway namespace (no module tree: nothing can be autoloaded)."""
    proc = subprocess.run([TC, "qdisc", "add", "dev", "lo", "root", *PROBES[kind]], capture_output=True,
                          timeout=TIMEOUT, preexec_fn=netns.child_joining(None))
    return proc.returncode == 0


def _run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT)


def apply(netns: str, iface: str, imp: Impairment) -> None:
    """Put `imp` on `iface` (an empty one clears it)."""
    if imp.is_empty():
        clear(netns, iface)
        return
    check_features(imp)
    proc = _run(tc_argv(netns, iface, imp))
    if proc.returncode == 0:
        return
    detail = " ".join(proc.stderr.split())
    if "qdisc kind is unknown" in detail or "Unknown qdisc" in detail:
        module, option = QDISC_MODULES[imp.qdisc]
        raise KernelFeatureMissing(
            f"this kernel has no {imp.qdisc} qdisc ({option}, module {module}), which {imp.summary()} needs; "
            "nothing was changed" + ("; a rate alone works with tbf: drop delay, jitter and loss"
                                     if imp.qdisc == "netem" else ""))
    if "Cannot find device" in detail:
        raise InputError(f"{netns} has no interface {iface!r}")
    raise NetlabError(f"`{' '.join(tc_argv(netns, iface, imp))}` failed: {detail}")


def clear(netns: str, iface: str) -> None:
    """Back to the kernel's default qdisc; nothing to clear is fine."""
    proc = _run(clear_argv(netns, iface))
    detail = " ".join(proc.stderr.split())
    if proc.returncode != 0 and "Cannot find device" in detail:
        raise InputError(f"{netns} has no interface {iface!r}")
    if proc.returncode != 0 and "No such file or directory" not in detail and "Cannot delete qdisc with handle of zero" not in detail:
        raise NetlabError(f"`{' '.join(clear_argv(netns, iface))}` failed: {detail}")


def read(netns: str, iface: str) -> Impairment:
    """What the kernel holds on `iface` now (netem or tbf at the root), as an Impairment."""
    proc = _run([TC, "-n", netns, "-j", "qdisc", "show", "dev", iface, "root"])
    if proc.returncode != 0:
        return Impairment()
    for qdisc in json.loads(proc.stdout or "[]"):
        if qdisc.get("root") is False:
            continue
        options = qdisc.get("options", {})
        if qdisc.get("kind") == "netem":
            return from_netem(options)
        if qdisc.get("kind") == "tbf":
            return Impairment(rate=rate_text(options.get("rate")))
    return Impairment()


def from_netem(options: dict) -> Impairment:
    """netem's JSON options (delay in seconds, loss as a fraction, rate in bytes/s) as tc's words."""
    delay = options.get("delay") or {}
    loss = options.get("loss-random") or {}
    rate = options.get("rate") or {}
    return Impairment(
        delay=ms_text(delay.get("delay")), jitter=ms_text(delay.get("jitter")),
        loss=f"{loss['loss'] * 100:g}%" if loss.get("loss") else None,
        rate=rate_text(rate.get("rate")))
