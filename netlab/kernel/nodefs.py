"""A node's own /run and /etc entries, seen only by processes started in the node's mount namespace.

On a real node, daemons keep their control sockets and configuration in fixed places (BIRD:
/etc/bird/bird.conf and /run/bird/bird.ctl; wireguard-go and `wg`: /run/wireguard/IFACE.sock).
Several lab nodes share one host, so each node keeps its files under the lab's run directory
(`<lab dir>/nodes/<node>/{run,etc}`), and a process started for the node — a daemon, or
`netlab exec NODE -- CMD` — gets, as `ip netns exec` does for /etc/netns/NAME:
- the node's network namespace (nsenter);
- a new mount namespace whose propagation from the host is one-way (`--propagation slave`),
  with the node's `run/` directory bind-mounted over /run (the host's /run/netns bound back in,
  so `ip netns` still works) and each entry of the node's `etc/` bound over the host's file or
  directory of that name (only where the host has one: nothing is created in the host's /etc);
- a new UTS namespace with the node's name as hostname.
Nothing is mounted or written in the host's namespaces. The wrapper is a plain argv (nsenter,
unshare, sh, mount and hostname from util-linux and hostname), so no Python runs between fork
and exec, and a daemon keeps the pid it was started with (every step execs the next).
"""
from __future__ import annotations

import os
from pathlib import Path

from .netns import NETNS_DIR

# $0 the node's directory, $1 the hostname, then the command. etc/ entries are bound first: $0
# may lie under /run (the default lab directory), hidden once run/ covers it. The node's run/netns holds the
# host's /run/netns (bound first) so that it stays visible once run/ covers /run.
MOUNT_SCRIPT = (
    'set -e; for e in "$0"/etc/*; do [ -e "$e" ] || continue; t="/etc/${e##*/}"; '
    'if [ -e "$t" ]; then mount --bind "$e" "$t"; fi; done; '
    'mount --rbind /run/netns "$0/run/netns"; mount --rbind "$0/run" /run; '
    'hostname "$1"; shift; exec "$@"'
)


HOST_RESOLV_CONF = "/etc/resolv.conf"
MAX_RESOLV_CONF = 10 << 20   # as kubelet: at most 10 MiB of it is read


def host_resolv_conf(path: str = HOST_RESOLV_CONF) -> str:
    """The host's resolv.conf, read only (empty when there is none or it cannot be read):
    netlab.core.resolvconf.node_resolv_conf makes a lab node's out of it."""
    try:
        with open(path, "rb") as f:
            return f.read(MAX_RESOLV_CONF).decode("utf-8", "replace")
    except OSError:
        return ""


def node_root(lab_dir: Path, node: str) -> Path:
    return lab_dir / "nodes" / node


def prepare(root: Path) -> Path:
    """The node's directory with its run/ and etc/ (root only), made if missing."""
    for sub in ("", "run", "run/netns", "etc"):
        (root / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    return root


def wrap(netns_name: str, root: Path, hostname: str, argv: list[str]) -> list[str]:
    """argv run as a process of the node: its netns, its /run and /etc entries, its hostname."""
    return ["nsenter", f"--net={os.path.join(NETNS_DIR, netns_name)}", "--",
            "unshare", "--mount", "--uts", "--propagation", "slave", "--",
            "sh", "-c", MOUNT_SCRIPT, str(root), hostname, *argv]
