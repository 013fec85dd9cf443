"""Linux capabilities as a container gets them: containerd's and Docker's default set, add/drop."""
from __future__ import annotations

# capability numbers of linux/capability.h, index = number (CAP_ prefix dropped)
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)

# containerd's oci.defaultUnixCaps / Docker's DefaultCapabilities (moby oci/caps/defaults.go)
DEFAULT_CAPS = frozenset({
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
    "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
})


def cap_name(text: str) -> str | None:
    """'NET_ADMIN', 'CAP_NET_ADMIN' (either case) -> 'NET_ADMIN'; 'ALL' kept; None if unknown."""
    name = text.upper().removeprefix("CAP_")
    return name if name == "ALL" or name in CAPABILITIES else None


def effective_caps(add: tuple[str, ...], drop: tuple[str, ...]) -> tuple[str, ...]:
    """The set a container runs with, as containerd's CRI computes it (WithCapabilities): the
    defaults ('ALL' in add: every capability; 'ALL' in drop: none), plus add, minus drop."""
    caps = set(CAPABILITIES) if "ALL" in add else set(DEFAULT_CAPS)
    if "ALL" in drop:
        caps = set()
    caps = (caps | set(add)) - set(drop) - {"ALL"}
    return tuple(sorted(caps, key=CAPABILITIES.index))
