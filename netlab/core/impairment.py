"""Link impairments (delay, jitter, loss, rate) as plain data, and the `tc` command for each.

As containerlab's `tools netem`: the root qdisc of an interface is replaced — `netem` when a
delay, jitter or loss is asked (with netem's own `rate` when a rate is too), `tbf` for a rate
alone (tbf is in more kernels than netem: this development machine's has tbf and no netem).
netlab.kernel.impair runs the commands inside lab namespaces.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InputError, Problem

TC = "tc"
TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}
RATE_UNITS = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9}
QDISC_MODULES = {"netem": ("sch_netem", "CONFIG_NET_SCH_NETEM"), "tbf": ("sch_tbf", "CONFIG_NET_SCH_TBF")}
TBF_LATENCY = "50ms"     # how long a packet may wait in tbf's queue before it is dropped


@dataclass(frozen=True)
class Impairment:
    """What to do to one interface's egress; each field as tc writes it (`10ms`, `1%`, `100mbit`)."""

    delay: str | None = None
    jitter: str | None = None
    loss: str | None = None
    rate: str | None = None

    @property
    def qdisc(self) -> str:
        return "netem" if (self.delay or self.jitter or self.loss) else "tbf"

    def is_empty(self) -> bool:
        return not (self.delay or self.jitter or self.loss or self.rate)

    def summary(self) -> str:
        parts = [f"delay {self.delay}" + (f" ±{self.jitter}" if self.jitter else "") if self.delay else "",
                 f"loss {self.loss}" if self.loss else "", f"rate {self.rate}" if self.rate else ""]
        return ", ".join(p for p in parts if p) or "none"

    def to_json(self) -> dict[str, str]:
        return {k: v for k, v in (("delay", self.delay), ("jitter", self.jitter), ("loss", self.loss),
                                  ("rate", self.rate)) if v}

    @classmethod
    def from_json(cls, data: dict) -> "Impairment":
        return cls(data.get("delay"), data.get("jitter"), data.get("loss"), data.get("rate"))


# -- values ----------------------------------------------------------------------------------------
def milliseconds(text: str) -> float | None:
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(us|ms|s)\s*", text)
    return float(found.group(1)) * TIME_UNITS[found.group(2)] if found else None


def percent(text: str) -> float | None:
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%\s*", text)
    value = float(found.group(1)) if found else None
    return value if value is not None and value <= 100 else None


def bits_per_second(text: str) -> int | None:
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(bit|kbit|mbit|gbit)\s*", text.lower())
    value = int(float(found.group(1)) * RATE_UNITS[found.group(2)]) if found else 0
    return value if value > 0 else None


CHECKS = {   # field -> (parser, what a right value looks like)
    "delay": (milliseconds, "a time such as 10ms, 500us or 1s"),
    "jitter": (milliseconds, "a time such as 2ms"),
    "loss": (percent, "a percentage from 0% to 100%, such as 1%"),
    "rate": (bits_per_second, "a rate such as 100mbit, 512kbit or 1gbit"),
}


def check(values: dict[str, object], file: str, path: str, line: int | None = None) -> list[Problem]:
    """Problems with an impairment's fields (unknown ones, unparsable values, jitter without delay)."""
    problems = []
    for key, value in values.items():
        where = f"{path}.{key}" if path else f"--{key}"
        if key not in CHECKS:
            problems.append(Problem(file, line, where, "unknown impairment field",
                                    f"use one of {', '.join(CHECKS)}"))
            continue
        parse, right = CHECKS[key]
        if not isinstance(value, str) or parse(value) is None:
            problems.append(Problem(file, line, where, f"{value!r} is not {right}", f"write {right}"))
    if values.get("jitter") and not values.get("delay"):
        problems.append(Problem(file, line, f"{path}.jitter" if path else "--jitter",
                                "jitter needs a delay to vary around", "add a delay, e.g. --delay 10ms"))
    return problems


def parse(values: dict[str, str | None], file: str = "<arguments>", path: str = "") -> Impairment:
    """An Impairment from CLI options or a lab-file mapping; InputError listing every bad field."""
    given = {k: v for k, v in values.items() if v is not None}
    problems = check(given, file, path)
    if problems:
        raise InputError(problems)
    return Impairment(**{k: v.strip() for k, v in given.items()})   # type: ignore[arg-type]


# -- tc ----------------------------------------------------------------------------------------------
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



def from_netem(options: dict) -> Impairment:
    """netem's JSON options (delay in seconds, loss as a fraction, rate in bytes/s) as tc's words."""
    delay = options.get("delay") or {}
    loss = options.get("loss-random") or {}
    rate = options.get("rate") or {}
    return Impairment(
        delay=_ms_text(delay.get("delay")), jitter=_ms_text(delay.get("jitter")),
        loss=f"{loss['loss'] * 100:g}%" if loss.get("loss") else None,
        rate=rate_text(rate.get("rate")))


def _ms_text(seconds: float | None) -> str | None:
    return f"{seconds * 1000:g}ms" if seconds else None


def rate_text(bytes_per_second: int | None) -> str | None:
    if not bytes_per_second:
        return None
    bits = bytes_per_second * 8
    for unit, size in (("gbit", 10**9), ("mbit", 10**6), ("kbit", 10**3)):
        if bits >= size:
            return f"{bits / size:g}{unit}"
    return f"{bits}bit"
