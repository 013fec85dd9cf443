"""flannel's vxlan backend (pkg/backend/vxlan), entry for entry."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from ipaddress import IPv4Interface

from ..ipam import Allocation, NodeAlloc
from ...model.checks import MISSING, DocChecker
from ...model.lab import LabFile
from ...names import NODE_UPLINK
from .kind import BackendKind, Options
from ..steps import Addr, Fdb, Neigh, Route, Step, Up, Vxlan
from . import hostgw

OVERHEAD = 50     # flannel: MTU = underlay MTU - 50 (pkg/backend/vxlan)


@dataclass(frozen=True)
class VxlanOptions:
    """flannel's vxlan backend settings (pkg/backend/vxlan): the lab file's spec.vxlan."""

    vni: int = 1
    port: int = 8472
    direct_routing: bool = False


def parse_options(raw: dict, check: DocChecker, path: str) -> VxlanOptions:
    return VxlanOptions(
        vni=check.integer(raw.get("vni", MISSING), f"{path}.vni", 1, (1 << 24) - 1) or 1,
        port=check.integer(raw.get("port", MISSING), f"{path}.port", 1, 65535) or 8472,
        direct_routing=bool(check.boolean(raw.get("directRouting", MISSING), f"{path}.directRouting")))


def device(lab: LabFile) -> str:
    return f"flannel.{lab.lab.options.vni}"


def vtep_mac(lab: str, node: str) -> str:
    """flannel persists a random MAC per node; netlab derives one, so plans are repeatable."""
    raw = bytearray(hashlib.sha256(f"{lab}/{node}/vtep".encode()).digest()[:6])
    raw[0] = (raw[0] & 0xFE) | 0x02      # unicast, locally administered
    return ":".join(f"{b:02x}" for b in raw)


def node_steps(lab: LabFile, alloc: Allocation, node: NodeAlloc) -> list[Step]:
    dev = device(lab)
    opts: VxlanOptions = lab.lab.options
    steps: list[Step] = [
        Vxlan(dev, opts.vni, opts.port, node.underlay_ip, NODE_UPLINK,
              lab.lab.underlay_mtu - OVERHEAD, vtep_mac(lab.lab.name, node.name)),
        Addr(dev, IPv4Interface(f"{node.vtep_ip}/32")),
        Up(dev),
    ]
    for remote in alloc.nodes.values():
        if remote.name == node.name:
            continue
        if opts.direct_routing and remote.rack == node.rack:
            steps.append(hostgw.route_to(remote))   # flannel's DirectRouting: same segment, no tunnel
            continue
        mac = vtep_mac(lab.lab.name, remote.name)
        steps += [
            Neigh(dev, remote.vtep_ip, mac),
            Fdb(dev, mac, remote.underlay_ip),
            Route(remote.pod_cidr, dev, via=remote.vtep_ip, onlink=True),
        ]
    return steps


KIND = BackendKind("vxlan", node_steps, link_kinds=("vxlan",), overhead=OVERHEAD, flannel=True,
                   options=Options("vxlan", ("vni", "port", "directRouting"), parse_options))
