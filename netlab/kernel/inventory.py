"""What the kernel says netlab owns: namespaces whose loopback carries netlab's mark.

The mark is lo's interface alias, set before the namespace gets its name:
``netlab:<lab>:<role>:<subject>``. A namespace without it is never touched, whatever
its name looks like.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import netns
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
    found: dict[str, Mark] = {}
    for name in netns.listed():
        if lab is not None and not name.startswith(f"{lab}."):
            continue
        mark = Mark.parse(kernel.read_mark(name))
        kernel.release(name)
        if mark is None or (lab is not None and mark.lab != lab):
            continue
        if name.split(".", 1)[0] != mark.lab:
            continue   # a mark copied onto another lab's name: not this lab's naming, leave it
        found[name] = mark
    return found
