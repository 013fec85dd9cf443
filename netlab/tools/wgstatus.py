"""WireGuard in `netlab status`: per node, the implementation that runs and `wg show DEV dump`
(each peer's latest handshake and transfer counters), read live from the node."""
from __future__ import annotations

import os
import time

from ..core.backends import wireguard as wg_backend
from ..kernel import daemons, nodefs
from ..kernel import wireguard as wg
from ..ops import state
from ..ops.record import LabRecord


def of_record(record: LabRecord) -> dict[str, dict]:
    """node -> its WireGuard state; empty for other backends, or without root (`wg` needs it)."""
    if record.backend != wg_backend.KIND.name or os.geteuid() != 0:
        return {}
    lab = record.name
    roots = {n.name: nodefs.node_root(state.lab_dir(lab), n.name) for n in record.nodes}
    names = {}
    for node, root in roots.items():
        try:
            names[wg.public_key(root)] = node
        except OSError:
            continue
    out: dict[str, dict] = {}
    for n in record.nodes:
        node, netns = n.name, n.netns
        if not os.path.exists(os.path.join("/run/netns", netns)):
            continue
        implementation, pid = wg.implementation_of(lab, node, netns)
        entry: dict = {"implementation": implementation.value, "pid": pid, "device": wg_backend.DEVICE}
        done = daemons.run(netns, roots[node], node, ["wg", "show", wg_backend.DEVICE, "dump"])
        if done.returncode != 0:
            entry["error"] = done.stderr.strip()
        else:
            dev = wg.dump(done.stdout)
            entry.update(publicKey=dev.public_key, listenPort=dev.listen_port, peers=[
                {"node": names.get(p.public_key), "publicKey": p.public_key, "endpoint": p.endpoint,
                 "allowedIPs": p.allowed_ips, "latestHandshake": p.latest_handshake,
                 "rxBytes": p.rx_bytes, "txBytes": p.tx_bytes} for p in dev.peers])
        out[node] = entry
    return out


def ago(stamp: int, now: float | None = None) -> str:
    if not stamp:
        return "never"
    return f"{max(0, int((now or time.time()) - stamp))} s ago"
