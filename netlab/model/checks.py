"""Field checks shared by the loaders: each records a Problem and returns a safe value."""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, ip_address, ip_network

from ..errors import Problem
from .yamlsrc import Document, join

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
IANA_SVC_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
MISSING = object()


@dataclass
class DocChecker:
    """Collects the problems of one YAML document, each with its line and field path."""

    doc: Document
    problems: list[Problem]
    label: str = ""  # e.g. "Pod(x/a)", prefixed to every field path
    errors: int = field(default=0)

    def error(self, path: str, message: str, hint: str = "") -> None:
        self.errors += 1
        shown = f"{self.label}.{path}" if self.label and path else (self.label or path)
        self.problems.append(Problem(self.doc.file, self.doc.line_of(path), shown, message, hint))

    # -- shapes -----------------------------------------------------------------
    def mapping(self, value: object, path: str, *, required: bool = False) -> dict:
        if value is MISSING or value is None:
            if required:
                self.error(path, "is required", "add it as a mapping")
            return {}
        if not isinstance(value, dict):
            self.error(path, f"expected a mapping, got {type_name(value)}")
            return {}
        return value

    def sequence(self, value: object, path: str, *, required: bool = False) -> list:
        if value is MISSING or value is None:
            if required:
                self.error(path, "is required", "add it as a list")
            return []
        if not isinstance(value, list):
            self.error(path, f"expected a list, got {type_name(value)}")
            return []
        return value

    def known_keys(self, value: dict, path: str, allowed: tuple[str, ...]) -> None:
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"did you mean {close[0]!r}?" if close else "known keys: " + ", ".join(allowed)
                self.error(join(path, key), f"unknown key {key!r}", hint)

    # -- scalars ----------------------------------------------------------------
    def string(self, value: object, path: str, *, required: bool = False) -> str | None:
        if value is MISSING or value is None:
            if required:
                self.error(path, "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.error(path, f"expected a string, got {type_name(value)}")
            return None
        return str(value)

    def integer(self, value: object, path: str, lo: int, hi: int) -> int | None:
        if value is MISSING or value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(path, f"expected a whole number from {lo} to {hi}, got {value!r}")
            return None
        if not lo <= value <= hi:
            self.error(path, f"{value} is out of range", f"use a number from {lo} to {hi}")
            return None
        return value

    def boolean(self, value: object, path: str) -> bool | None:
        if value is MISSING or value is None:
            return None
        if not isinstance(value, bool):
            self.error(path, f"expected true or false, got {value!r}")
            return None
        return value

    def dns_label(self, value: object, path: str, what: str, *, required: bool = True,
                  max_len: int = 63) -> str | None:
        name = self.string(value, path, required=required)
        if name is None:
            return None
        if len(name) > max_len:
            self.error(path, f"{what} {name!r} is {len(name)} characters long",
                       f"use at most {max_len} characters")
            return None
        if not DNS1123_LABEL.match(name):
            self.error(path, f"{what} {name!r} is not a DNS-1123 label",
                       "use lower-case letters, digits and '-', starting and ending with a letter or digit")
            return None
        return name

    def labels(self, value: object, path: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, val in self.mapping(value, path).items():
            key_path = join(path, key)
            name = str(key).rsplit("/", 1)[-1]
            if not isinstance(key, str) or not LABEL_NAME.match(name) or len(name) > 63:
                self.error(key_path, f"{key!r} is not a valid label key")
                continue
            text = self.string(val, key_path, required=True)
            if text is None:
                continue
            if text and (len(text) > 63 or not LABEL_NAME.match(text)):
                self.error(key_path, f"{text!r} is not a valid label value",
                           "at most 63 characters: letters, digits, '-', '_', '.'")
                continue
            out[key] = text
        return out

    def network(self, value: object, path: str, what: str, *, required: bool = False) -> IPv4Network | None:
        text = self.string(value, path, required=required)
        if text is None:
            return None
        if "," in text:
            self.error(path, f"{what} {text!r} is dual-stack", "netlab builds IPv4 labs: give one IPv4 CIDR")
            return None
        try:
            net = ip_network(text.strip(), strict=True)
        except ValueError as err:
            try:
                loose = ip_network(text.strip(), strict=False)
                self.error(path, f"{what} {text!r} has host bits set", f"did you mean {loose}?")
            except ValueError:
                self.error(path, f"{what} {text!r} is not a CIDR ({err})", "write it as e.g. 172.16.0.0/16")
            return None
        if not isinstance(net, IPv4Network):
            self.error(path, f"{what} {text!r} is IPv6", "netlab builds IPv4 labs: give an IPv4 CIDR")
            return None
        return net

    def address(self, value: object, path: str, what: str) -> IPv4Address | None:
        text = self.string(value, path, required=True)
        if text is None:
            return None
        try:
            addr = ip_address(text.strip())
        except ValueError:
            self.error(path, f"{what} {text!r} is not an IP address", "write it as e.g. 172.16.0.10")
            return None
        if not isinstance(addr, IPv4Address):
            self.error(path, f"{what} {text!r} is IPv6", "netlab builds IPv4 labs")
            return None
        return addr


def type_name(value: object) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)
