"""The backend registry: one BackendKind per backend module, looked up by the lab's backend.

Adding a backend: a module defining KIND (see kind.py), and its line in KINDS below. The
lab file's backend names (`Backend`) and its backend options (`spec.KEY`) come from here.
"""
from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType

from ...errors import Problem
from ...model.lab import LabFile
from . import hostgw, ipip, ipvlan, macvlan, vxlan, wireguard
from .kind import BackendKind, Options

KINDS: tuple[BackendKind, ...] = (
    vxlan.KIND,
    hostgw.KIND,
    macvlan.KIND,
    ipip.KIND,
    ipvlan.KIND,
    wireguard.KIND,
)

# spec.backend's values, e.g. Backend.HOST_GW == "host-gw"; what LabSpec.backend holds
Backend = StrEnum("Backend", [(kind.name.upper().replace("-", "_"), kind.name) for kind in KINDS], module=__name__)
REGISTRY: MappingProxyType[Backend, BackendKind] = MappingProxyType({Backend(kind.name): kind for kind in KINDS})
DEFAULT = Backend(vxlan.KIND.name)   # flannel's default backend
OPTIONS: tuple[tuple[Backend, Options], ...] = tuple(
    (Backend(kind.name), kind.options) for kind in KINDS if kind.options is not None)
KERNEL_OPTIONS = {   # link kind -> (kernel config option, module)
    "veth": ("CONFIG_VETH", "veth"), "bridge": ("CONFIG_BRIDGE", "bridge"),
    "vxlan": ("CONFIG_VXLAN", "vxlan"), "macvlan": ("CONFIG_MACVLAN", "macvlan"),
    "ipip": ("CONFIG_NET_IPIP", "ipip"), "ipvlan": ("CONFIG_IPVLAN", "ipvlan"),
}


def of(lab: LabFile) -> BackendKind:
    return REGISTRY[lab.lab.backend]


def required_link_kinds(lab: LabFile) -> tuple[str, ...]:
    """Kernel link kinds the lab needs, checked before anything is built (the VPC is bridges)."""
    return ("veth", "bridge") + of(lab).link_kinds


def kernel_module(kind: str) -> str:
    """The module that provides a link kind."""
    return KERNEL_OPTIONS.get(kind, (None, kind))[1]


def kernel_option(kind: str) -> str:
    """How to name a missing link kind to the user: its kernel option and module."""
    option, module = KERNEL_OPTIONS.get(kind, (f"CONFIG_{kind.upper()}", kind))
    return f"{kind} ({option}, module {module})"


def check(lab: LabFile) -> list[Problem]:
    """What the lab asks of its backend that the backend cannot do (the loader reports these)."""
    kind = of(lab)
    if lab.policies and not kind.holds_policies:
        return [Problem(
            lab.source, None, "spec.backend",
            f"backend {lab.lab.backend.value!r} cannot enforce the file's {len(lab.policies)} NetworkPolicies: "
            "its pods sit on the underlay and talk to each other without crossing a node namespace, "
            "where netlab's nftables rules live",
            "use vxlan, host-gw or ipip for a lab with NetworkPolicies, or remove them")]
    return []
