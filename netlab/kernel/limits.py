"""Process limits a big lab needs: every open namespace holds descriptors."""
from __future__ import annotations

import resource


def raise_open_files() -> int:
    """Lift the soft RLIMIT_NOFILE to the hard limit (this process only); the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft
