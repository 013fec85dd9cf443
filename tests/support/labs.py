"""Lab files and lab names for tests: names unique to this run, so concurrent runs never meet."""
from __future__ import annotations

import itertools
import os

from netlab.names import MAX_LAB_NAME
from netlab.spec.labtext import lab_yaml, pod_yaml

__all__ = ["RUN_TAG", "lab_name", "lab_yaml", "pod_yaml"]

RUN_TAG = f"t{os.getpid() % 10000}"
_counter = itertools.count(1)


def lab_name(prefix: str = "lab") -> str:
    return f"{RUN_TAG}{prefix}{next(_counter)}"[:MAX_LAB_NAME]
