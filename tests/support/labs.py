"""Lab files and lab names for tests: names unique to this run, so concurrent runs never meet."""
from __future__ import annotations

import itertools
import re
import os

from netlab.names import MAX_LAB_NAME
from netlab.spec.labtext import lab_yaml, pod_yaml

__all__ = ["RUN_TAG", "lab_name", "lab_yaml", "pod_yaml", "without_dns"]

RUN_TAG = f"t{os.getpid() % 10000}"
_counter = itertools.count(1)


def lab_name(prefix: str = "lab") -> str:
    return f"{RUN_TAG}{prefix}{next(_counter)}"[:MAX_LAB_NAME]


def without_dns(text: str) -> str:
    """A lab file (a topology, the default lab) with cluster DNS left out: for tests that count or
    pair the file's own pods; a test of cluster DNS keeps it."""
    out, count = re.subn(r"(kind: Lab\n(?:.*\n)*?spec:\n)", r"\1  dns: {enabled: false}\n", text, count=1)
    assert count == 1, "no Lab spec found"
    return out
