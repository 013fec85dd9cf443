"""What the kernel says netlab owns: namespaces whose loopback carries netlab's mark.

The mark is lo's interface alias, set before the namespace gets its name:
``netlab:<lab>:<role>:<subject>``. A namespace without it is never touched, whatever
its name looks like.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from . import netns, rtnl
from .apply import Kernel

MARK_PREFIX = "netlab"


@dataclass(frozen=True)
class Mark:
    """netlab's mark on a namespace (its lo's alias): the lab, role and subject the namespace is built for."""

    lab: str
    role: str
    subject: str

    def text(self) -> str:
        return f"{MARK_PREFIX}:{self.lab}:{self.role}:{self.subject}"

    @classmethod
    def parse(cls, text: str | None) -> "Mark | None":
        if not text:
            return None
        parts = text.split(":", 3)
        if len(parts) != 4 or parts[0] != MARK_PREFIX or not parts[1]:
            return None
        return cls(parts[1], parts[2], parts[3])


def owned(kernel: Kernel, lab: str | None) -> dict[str, Mark]:
    """Namespaces netlab made: those of lab `lab`, or of every lab when lab is None.
    Names are filtered by prefix only to skip work; the mark decides.
    """
    names = [name for name in netns.listed() if lab is None or name.startswith(f"{lab}.")]
    # one after the other: reads from several threads (each switching its own namespace) measured
    # twice slower in all, the kernel serializing them
    texts = [read_mark(name, kernel.switch) for name in names]
    found: dict[str, Mark] = {}
    for name, text in zip(names, texts):
        mark = Mark.parse(text)
        if mark is None or (lab is not None and mark.lab != lab):
            continue
        if name.split(".", 1)[0] != mark.lab:
            continue   # a mark copied onto another lab's name: not this lab's naming, leave it
        found[name] = mark
    return found


def read_mark(name: str, switch: netns.Switcher | None = None) -> str | None:
    """The mark of a named namespace (lo's alias), read through a netlink socket made inside it
    (nothing is kept open); None when absent or unreadable. `switch`: the caller's, else its own."""
    if switch is None:
        switch = netns.Switcher()
        try:
            return read_mark(name, switch)
        finally:
            switch.close()
    try:
        fd = netns.open_ns(name)
    except OSError:
        return None
    try:
        with switch.inside(fd):
            sock = rtnl.RtnlSocket()
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        return sock.link(1).alias
    except (OSError, rtnl.NetlinkError):
        return None
    finally:
        sock.close()
