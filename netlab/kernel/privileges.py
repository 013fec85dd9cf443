"""Whether this process holds the capabilities that building namespaces needs."""
from __future__ import annotations

from pathlib import Path

from ..errors import PrivilegeError

CAP_NET_ADMIN, CAP_SYS_ADMIN = 12, 21


def require_privileges(command: str) -> None:
    caps = 0
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                caps = int(line.split()[1], 16)
    except OSError:
        pass
    missing = [name for bit, name in ((CAP_NET_ADMIN, "CAP_NET_ADMIN"), (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"))
               if not caps & (1 << bit)]
    if missing:
        raise PrivilegeError(f"`netlab {command}` needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN); "
                             f"missing {', '.join(missing)}: run it with sudo, or in a --privileged container")
