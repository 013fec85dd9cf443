"""A daemon a backend runs in each node (BIRD for bgp), as plan data: its argv and its files.

The files are written under the node's own directory (netlab.kernel.nodefs), which the daemon
sees as its /etc and /run: `etc/bird/bird.conf` is /etc/bird/bird.conf to it.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DaemonRun:
    """A daemon of a node or of the VPC namespace (BIRD): its argv, the files and directories it needs,
    and the package that provides it."""

    name: str                              # e.g. "bird": how status, logs and `node stop` name it
    argv: tuple[str, ...]                  # run in the foreground: the pid netlab starts is the daemon
    files: tuple[tuple[str, str], ...] = ()   # (path under the node's directory, content)
    dirs: tuple[str, ...] = ()             # directories it needs under the node's directory (run/bird)
    package: str = ""                      # the Debian package providing argv[0], named when it is missing

    def describe(self) -> str:
        return f"# daemon {self.name}: {' '.join(self.argv)}" + "".join(
            f"; /{path} ({len(text.splitlines())} lines)" for path, text in self.files)
