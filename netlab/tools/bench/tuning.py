"""The one setting the bench changes in its client namespaces (never in the root namespace).

TCP_CRR leaves tens of thousands of TIME_WAIT sockets on the client side (wrk and nginx close
at about the same moment). Without reuse, the next test's connect() crawls through a nearly
exhausted ephemeral port range and measures that instead of the datapath; measured here, the
vxlan cross-node TCP_CRR after the same-node one fell from ~4,600 to ~2,000 trans/s. Load
generators (netperf's TCP_CRR users included) set tcp_tw_reuse for the same reason.
"""
from __future__ import annotations

from ...kernel.apply import Kernel
from ...core.steps import Sysctl

CLIENT_TUNING = Sysctl("net/ipv4/tcp_tw_reuse", "1")


def tune_client(netns_name: str) -> None:
    """Apply CLIENT_TUNING inside a bench lab's client pod (its own namespace only)."""
    with Kernel() as kernel:
        kernel.attach(netns_name)
        kernel.apply(netns_name, [CLIENT_TUNING])
