"""The baseline: two bare namespaces joined by one veth pair — no bridge, no routing, no tunnel.

Built with netlab's own Kernel (the one module that talks netlink) and marked like every
netlab namespace (lab `<prefix>-veth`), so `netlab down --name <prefix>-veth` removes it
even after a crash. Whatever is left from an earlier run is removed first.
"""
from __future__ import annotations

from ipaddress import IPv4Interface

from ...ops import lab as lab_ops
from ...kernel import netns
from ...ops import state
from ...kernel.apply import ApplyError, Kernel
from ...errors import NetlabError
from ...kernel.inventory import Mark, owned
from ...core.steps import Addr, Up, Veth
from .paths import BASELINE_BACKEND, Endpoint, PathKind, PathPair
from .tuning import CLIENT_TUNING

ROLE = "baseline"


class NotABaseline(NetlabError):
    """A lab named like the bench's baseline holds other namespaces: someone's own, left alone."""
CLIENT_ADDR = IPv4Interface("10.254.0.1/30")   # private to the two namespaces: no route leaves them
SERVER_ADDR = IPv4Interface("10.254.0.2/30")
MTU = 1500


def build(lab: str) -> PathPair:
    """Create `<lab>.client` and `<lab>.server` with eth0 ↔ eth0; returns the pair to measure."""
    remove(lab)
    client, server = f"{lab}.client", f"{lab}.server"
    created: list[str] = []
    with state.locked(lab), Kernel() as kernel:
        try:
            for name, side in ((client, "client"), (server, "server")):
                kernel.create(name, Mark(lab, ROLE, side).text())
                created.append(name)
            kernel.apply(client, [Up("lo"), Veth("eth0", "eth0", server, MTU), Addr("eth0", CLIENT_ADDR),
                                  Up("eth0"), CLIENT_TUNING])
            kernel.apply(server, [Up("lo"), Addr("eth0", SERVER_ADDR)])
        except BaseException as err:
            kernel.close()
            for name in reversed(created):
                netns.unpublish(name)
            if isinstance(err, ApplyError):
                raise NetlabError(f"the baseline veth pair could not be built: {err}") from err
            raise
    return PathPair(BASELINE_BACKEND, PathKind.BASELINE,
                    Endpoint(lab, "client", client, str(CLIENT_ADDR.ip)),
                    Endpoint(lab, "server", server, str(SERVER_ADDR.ip)))


def remove(lab: str) -> int:
    """Remove the baseline namespaces (and any process in them) the kernel shows are netlab's.

    Only a baseline: a lab of that name holding other namespaces (someone's own lab called
    `<prefix>-veth`) is refused, never removed."""
    with Kernel() as kernel:
        others = sorted(name for name, mark in owned(kernel, lab).items() if mark.role != ROLE)
    if others:
        raise NotABaseline(f"lab {lab!r} is not a bench baseline (it holds {', '.join(others[:3])}"
                          f"{' ...' if len(others) > 3 else ''}): netlab bench will not remove it; "
                          "pick another --lab-prefix, or remove it yourself with `netlab down --name "
                          f"{lab}`")
    return lab_ops.down(lab).removed
