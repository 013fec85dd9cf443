"""flannel's wireguard backend (pkg/backend/wireguard): one device `flannel-wg` per node,
UDP 51820, a key pair per node, one peer per remote node (AllowedIPs its pod block, Endpoint
its underlay IP and the listen port), the node CIDR's .0/32 on the device, and one route for
the whole pod network over it (WireGuard's AllowedIPs pick the peer). flannel subtracts 80
bytes (IPv6 outer header 40 + UDP 8 + WireGuard 32) from the underlay MTU, IPv4 or not.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Interface

from ..ipam import Allocation, NodeAlloc
from ...model.checks import MISSING, DocChecker
from ...model.lab import LabFile
from .kind import BackendKind, Options
from ..steps import Addr, Route, Step, Up, WgDevice, WgPeer

DEVICE = "flannel-wg"
OVERHEAD = 80
KEY_FILE = "/run/flannel/wgkey"        # flannel's place for the node's private key
PSK_FILE = "/run/flannel/wgpsk"


@dataclass(frozen=True)
class WireguardOptions:
    """flannel's wireguard backend settings (pkg/backend/wireguard), the lab file's spec.wireguard:
    ListenPort, PersistentKeepaliveInterval (0 = off), PSK (netlab generates one for the lab when true)."""

    listen_port: int = 51820
    persistent_keepalive: int = 0
    psk: bool = False


def parse_options(raw: dict, check: DocChecker, path: str) -> WireguardOptions:
    default = WireguardOptions()
    port = check.integer(raw.get("listenPort", MISSING), f"{path}.listenPort", 1, 65535)
    # seconds, as `wg set ... persistent-keepalive` takes them (0 = off, 65535 at most)
    keepalive = check.integer(raw.get("persistentKeepalive", MISSING), f"{path}.persistentKeepalive", 0, 65535)
    psk = check.boolean(raw.get("psk", MISSING), f"{path}.psk")
    return WireguardOptions(port or default.listen_port, keepalive or 0, bool(psk))


def peer_steps(lab: LabFile, alloc: Allocation, node: NodeAlloc) -> list[WgPeer]:
    opts: WireguardOptions = lab.lab.options
    return [WgPeer(DEVICE, remote.name, remote.pod_cidr, remote.underlay_ip, opts.listen_port,
                   opts.persistent_keepalive, PSK_FILE if opts.psk else None)
            for remote in alloc.nodes.values() if remote.name != node.name]


def node_steps(lab: LabFile, alloc: Allocation, node: NodeAlloc) -> list[Step]:
    opts: WireguardOptions = lab.lab.options
    steps: list[Step] = [
        WgDevice(DEVICE, lab.lab.underlay_mtu - OVERHEAD, opts.listen_port, KEY_FILE),
        Addr(DEVICE, IPv4Interface(f"{node.vtep_ip}/32")),
        Up(DEVICE),
        Route(lab.networking.pod_subnet, DEVICE),
    ]
    return steps + peer_steps(lab, alloc, node)


KIND = BackendKind("wireguard", node_steps, overhead=OVERHEAD, flannel=True,
                   options=Options("wireguard", ("listenPort", "persistentKeepalive", "psk"), parse_options))
