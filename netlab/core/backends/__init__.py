"""The backend registry: one BackendKind per backend module, looked up by the lab's backend.

Adding a backend: a module defining KIND (see kind.py), and its line in TABLE below. The lab
file's backend names (`Backend`) and its backend options (`spec.KEY`) come from here. A backend's
module is imported when a lab uses it (or names its options): `netlab up` of a vxlan lab does not
load BIRD's configuration writer (start-up time). tests/unit/test_registry.py holds TABLE to
each module's KIND.
"""
from __future__ import annotations

import importlib
from enum import StrEnum

from ...errors import Problem
from ...model.lab import LabFile
from .kind import BackendKind, Options

# the lab file's name, the module (in this package) defining its KIND, and its options' key (spec.KEY)
TABLE: tuple[tuple[str, str, str | None], ...] = (
    ("vxlan", "vxlan", "vxlan"),
    ("host-gw", "hostgw", None),
    ("macvlan", "macvlan", None),
    ("ipip", "ipip", None),
    ("ipvlan", "ipvlan", "ipvlan"),
    ("wireguard", "wireguard", "wireguard"),
    ("bgp", "bgp", "bgp"),
)

# spec.backend's values, e.g. Backend.HOST_GW == "host-gw"; what LabSpec.backend holds
Backend = StrEnum("Backend", [(name.upper().replace("-", "_"), name) for name, _, _ in TABLE], module=__name__)
DEFAULT = Backend("vxlan")   # flannel's default backend
OPTION_KEYS: tuple[tuple[Backend, str], ...] = tuple((Backend(name), key) for name, _, key in TABLE if key)
_MODULES = {Backend(name): module for name, module, _ in TABLE}


def kind(backend: Backend) -> BackendKind:
    """The backend's KIND (its module imported on first use)."""
    return importlib.import_module(f"{__name__}.{_MODULES[backend]}").KIND


def options(backend: Backend) -> Options:
    """The backend's lab-file options (for a backend whose TABLE line names a key)."""
    found = kind(backend).options
    assert found is not None, backend
    return found


KERNEL_OPTIONS = {   # link kind -> (kernel config option, module)
    "veth": ("CONFIG_VETH", "veth"), "bridge": ("CONFIG_BRIDGE", "bridge"),
    "vxlan": ("CONFIG_VXLAN", "vxlan"), "macvlan": ("CONFIG_MACVLAN", "macvlan"),
    "ipip": ("CONFIG_NET_IPIP", "ipip"), "ipvlan": ("CONFIG_IPVLAN", "ipvlan"),
}


def of(lab: LabFile) -> BackendKind:
    return kind(lab.lab.backend)


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


def daemons(lab: LabFile, alloc, node) -> tuple:
    """The daemons the backend runs in `node` (none for most backends)."""
    kind = of(lab)
    return kind.node_daemons(lab, alloc, node) if kind.node_daemons else ()


def router_daemons(lab: LabFile, alloc) -> tuple:
    """The daemons the backend runs in the VPC namespace, the racks' router (none for most)."""
    kind = of(lab)
    return kind.router_daemons(lab, alloc) if kind.router_daemons else ()


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
