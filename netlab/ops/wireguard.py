"""WireGuard around a run of `up`/`apply`: implementation chosen, keys made before the build,
peers converged after it; and `rotate-keys` on a running lab."""
from __future__ import annotations

import shutil
import subprocess
import sys

from typing import TYPE_CHECKING

from ..core.backends import Backend
from ..core.plan import Plan, Role
from ..core.steps import WgPeer
from ..errors import NetlabError
from ..kernel import nodefs
from ..kernel.apply import Kernel, probe_link_kinds
from ..model.lab import LabFile
from . import state

if TYPE_CHECKING:
    from ..kernel import wireguard as wg
# the backend's module and the kernel side are imported by the functions that run for a WireGuard
# lab only: `up` of any other lab does not load them (start-up time)


def uses_wireguard(lab: LabFile) -> bool:
    return lab.lab.backend == Backend.WIREGUARD


def check(lab: LabFile) -> wg.Implementation | None:
    """Before anything is built: which implementation (or exit 1 naming what is missing)."""
    if not uses_wireguard(lab):
        return None
    from ..kernel import wireguard as wg
    implementation, note = wg.choose(probe_link_kinds)
    if note:
        print(f"netlab: {note}", file=sys.stderr)
    return implementation


def nodes_of(lab: LabFile, the_plan: Plan, implementation: wg.Implementation) -> wg.Nodes:
    from ..kernel import wireguard as wg
    name = lab.lab.name
    roots = {n: nodefs.prepare(nodefs.node_root(state.lab_dir(name), n)) for n in the_plan.alloc.nodes}
    netns = {ns.subject: ns.name for ns in the_plan.namespaces if ns.role is Role.NODE}
    return wg.Nodes(name, implementation, roots, netns, state.lab_dir(name) / "logs")


def prepare(kernel: Kernel, lab: LabFile, the_plan: Plan, implementation: wg.Implementation | None) -> None:
    """Every node's keys exist before any device or peer is made (peers name each other's keys)."""
    if implementation is None:
        return
    from ..kernel import wireguard as wg
    nodes = nodes_of(lab, the_plan, implementation)
    wg.ensure_keys(nodes.roots, lab.lab.options.psk)
    kernel.wireguard = nodes
    gone = state.lab_dir(lab.lab.name) / "nodes"
    for root in gone.iterdir():   # keys of nodes no longer in the lab go with them
        if root.name not in nodes.roots:
            shutil.rmtree(wg.key_dir(root), ignore_errors=True)


def converge(kernel: Kernel, the_plan: Plan, built: set[str]) -> None:
    """Peers of the nodes kept as they were: the planned ones set, stale ones removed, nothing rebuilt."""
    nodes = kernel.wireguard
    if nodes is None:
        return
    from ..core.backends import wireguard as wg_backend
    from ..kernel import wireguard as wg
    for ns in the_plan.namespaces:
        if ns.role is Role.NODE and ns.name not in built:
            if not wg.has_device(kernel.attach(ns.name), wg_backend.DEVICE):
                # its wireguard-go was stopped or killed (the TUN device went with it): make it again
                kernel.apply(ns.name, [s for s in ns.steps if getattr(s, "dev", getattr(s, "name", None))
                                       == wg_backend.DEVICE])
                continue
            nodes.converge_peers(ns.subject, wg_backend.DEVICE, [s for s in ns.steps if isinstance(s, WgPeer)])


def rotate(lab_name: str) -> list[str]:
    """New key pairs for every node of a running lab, one node at a time, without a failed handshake.
    Everything comes from the running devices (`wg show dump`), not from the lab file:
    1. each other node adds the node's new public key as a second peer, with no AllowedIPs yet
       (its traffic keeps using the old peer's session);
    2. the node takes its new private key (its sessions end) and sends a keepalive to every peer:
       the handshakes, under the new key, find the new peer everywhere;
    3. each other node moves the AllowedIPs to the new peer and removes the old one.
    Returns the nodes re-keyed."""
    from ..core.backends import wireguard as wg_backend
    from ..kernel import wireguard as wg
    with state.locked(lab_name):
        record = state.load(lab_name)
        if record is None:
            raise NetlabError(f"no lab named {lab_name!r} is up (see `netlab status`)")
        if record.backend != wg_backend.KIND.name:
            raise NetlabError(f"lab {lab_name!r} runs backend {record.backend!r}: only wireguard has keys")
        netns = {n.name: n.netns for n in record.nodes}
        roots = {n: nodefs.prepare(nodefs.node_root(state.lab_dir(lab_name), n)) for n in netns}
        # only `wg` runs here, the same for both implementations: no device is made
        nodes = wg.Nodes(lab_name, wg.Implementation.KERNEL, roots, netns, state.lab_dir(lab_name) / "logs")
        dev = wg_backend.DEVICE
        for node in netns:
            old = wg.public_key(roots[node])
            seen = {other: next((p for p in wg.dump(nodes.wg(other, ["show", dev, "dump"])).peers
                                 if p.public_key == old), None) for other in netns if other != node}
            others = {other: peer for other, peer in seen.items() if peer is not None}
            mine = wg.dump(nodes.wg(node, ["show", dev, "dump"])).peers   # read before the switch: it is short
            keys = wg.key_dir(roots[node])
            (keys / "wgkey").replace(keys / "wgkey.old")   # kept until the node has switched
            try:
                new = wg.new_key(roots[node])
            except BaseException:
                (keys / "wgkey.old").replace(keys / "wgkey")
                raise
            _together([(o, ["set", dev, "peer", new, "endpoint", p.endpoint] + _psk(p)) for o, p in others.items()],
                      nodes)
            # the new key, and a keepalive to each peer at once: setting persistent-keepalive sends
            # one, which makes the handshake now rather than on the next packet (then back to off)
            nodes.wg(node, ["set", dev, "private-key", wg_backend.KEY_FILE]
                     + [a for p in mine for a in ("peer", p.public_key, "persistent-keepalive", "1")])
            (keys / "wgkey.old").unlink()
            restore = ["set", dev] + [a for p in mine for a in ("peer", p.public_key, "persistent-keepalive",
                                                                str(p.keepalive) if p.keepalive else "off")]
            _together([(node, restore)] + [(o, ["set", dev, "peer", new, "allowed-ips", p.allowed_ips]
                                            + _keepalive(p) + ["peer", old, "remove"]) for o, p in others.items()],
                      nodes)
        return list(netns)


def _psk(peer: wg.PeerState) -> list[str]:
    from ..core.backends import wireguard as wg_backend
    return ["preshared-key", wg_backend.PSK_FILE] if peer.preshared else []


def _keepalive(peer: wg.PeerState) -> list[str]:
    return ["persistent-keepalive", str(peer.keepalive)] if peer.keepalive else []


def _together(commands: list[tuple[str, list[str]]], nodes: wg.Nodes) -> None:
    """`wg` on several nodes at once: the window between the first and the last stays short."""
    running = [(node, args, subprocess.Popen(
        nodefs.wrap(nodes.netns[node], nodes.roots[node], node, ["wg", *args]),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)) for node, args in commands]
    failed = []
    for node, args, proc in running:
        _, err = proc.communicate(timeout=30)
        if proc.returncode != 0:
            failed.append(f"node {node}: `wg {' '.join(args)}` failed: {err.strip()}")
    if failed:
        raise NetlabError("; ".join(failed))
