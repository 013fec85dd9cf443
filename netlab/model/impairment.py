"""A link impairment (delay, jitter, loss, rate) as the lab file and `netlab impair` give it.

Each value is kept as tc writes it (`10ms`, `1%`, `100mbit`) and checked the way tc reads it.
netlab.core.impairment turns one into its tc command; netlab.kernel.impair applies it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InputError, Problem

TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}
RATE_UNITS = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9}


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


CHECKS = {   # field -> (parser, what a right value is, an example)
    "delay": (milliseconds, "a time", "10ms, 500us or 1s"),
    "jitter": (milliseconds, "a time", "2ms"),
    "loss": (percent, "a percentage from 0% to 100%", "1% or 0.5%"),
    "rate": (bits_per_second, "a rate in bit/s", "100mbit, 512kbit or 1gbit"),
}


def field_problems(values: dict[str, object]) -> list[tuple[str, str, str]]:
    """(field, what is wrong, what would be right) for each bad field of an impairment."""
    problems = []
    for key, value in values.items():
        if key not in CHECKS:
            problems.append((key, "unknown impairment field", f"use one of {', '.join(CHECKS)}"))
            continue
        parse_value, right, example = CHECKS[key]
        if not isinstance(value, str) or parse_value(value) is None:
            problems.append((key, f"{value!r} is not {right}", f"e.g. {example}"))
    if values.get("jitter") and not values.get("delay"):
        problems.append(("jitter", "jitter needs a delay to vary around", "add a delay, e.g. 10ms"))
    return problems


def from_values(values: dict[str, object]) -> "Impairment":
    """An Impairment from fields already checked (field_problems found nothing)."""
    return Impairment(**{k: str(v).strip() for k, v in values.items() if v is not None})   # type: ignore[arg-type]


def parse(values: dict[str, str | None]) -> Impairment:
    """An Impairment from `netlab impair`'s options; InputError naming every bad option."""
    given = {k: v for k, v in values.items() if v is not None}
    problems = [Problem("<arguments>", None, f"--{key}", message, hint)
                for key, message, hint in field_problems(given)]
    if problems:
        raise InputError(problems)
    return from_values(given)


@dataclass(frozen=True)
class LinkImpairment:
    """One `spec.impairments` entry: an interface of a node or pod, and what to do to it."""

    target: str                 # a node name, or a pod as `namespace/name` (or `name` when unique)
    interface: str | None       # None: the target's eth0
    impairment: Impairment
    index: int = 0              # its place in spec.impairments, for messages


def ms_text(seconds: float | None) -> str | None:
    return f"{seconds * 1000:g}ms" if seconds else None


def rate_text(bytes_per_second: int | None) -> str | None:
    if not bytes_per_second:
        return None
    bits = bytes_per_second * 8
    for unit, size in (("gbit", 10**9), ("mbit", 10**6), ("kbit", 10**3)):
        if bits >= size:
            return f"{bits / size:g}{unit}"
    return f"{bits}bit"
