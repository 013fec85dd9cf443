"""flannel's wireguard backend (pkg/backend/wireguard): one device `flannel-wg` per node,
UDP 51820, a key pair per node, one peer per remote node (AllowedIPs its pod block, Endpoint
its underlay IP and the listen port), the node CIDR's .0/32 on the device, and one route for
the whole pod network over it (WireGuard's AllowedIPs pick the peer). flannel subtracts 80
bytes (IPv6 outer header 40 + UDP 8 + WireGuard 32) from the underlay MTU, IPv4 or not.
"""
from __future__ import annotations

from ipaddress import IPv4Interface

from ..ipam import Allocation, NodeAlloc
from ...model.lab import Backend, LabFile
from .kind import BackendKind
from ..steps import Addr, Route, Step, Up, WgDevice, WgPeer

DEVICE = "flannel-wg"
OVERHEAD = 80
KEY_FILE = "/run/flannel/wgkey"        # flannel's place for the node's private key
PSK_FILE = "/run/flannel/wgpsk"


def peer_steps(lab: LabFile, alloc: Allocation, node: NodeAlloc) -> list[WgPeer]:
    opts = lab.lab.wireguard
    return [WgPeer(DEVICE, remote.name, remote.pod_cidr, remote.underlay_ip, opts.listen_port,
                   opts.persistent_keepalive, PSK_FILE if opts.psk else None)
            for remote in alloc.nodes.values() if remote.name != node.name]


def node_steps(lab: LabFile, alloc: Allocation, node: NodeAlloc) -> list[Step]:
    opts = lab.lab.wireguard
    steps: list[Step] = [
        WgDevice(DEVICE, lab.lab.underlay_mtu - OVERHEAD, opts.listen_port, KEY_FILE),
        Addr(DEVICE, IPv4Interface(f"{node.vtep_ip}/32")),
        Up(DEVICE),
        Route(lab.networking.pod_subnet, DEVICE),
    ]
    return steps + peer_steps(lab, alloc, node)


KIND = BackendKind(Backend.WIREGUARD, node_steps, overhead=OVERHEAD, flannel=True)
