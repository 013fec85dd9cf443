"""What a backend is: one frozen object holding everything the other stages ask of it."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...model.checks import DocChecker
from ...model.lab import LabFile, NodeSpec, Pod
from ..daemon import DaemonRun
from ..ipam import Allocation, NodeAlloc
from ..steps import Step

NodeSteps = Callable[[LabFile, Allocation, NodeAlloc], list[Step]]
PodSteps = Callable[[LabFile, Allocation, Pod], list[Step]]
NodeDaemons = Callable[[LabFile, Allocation, NodeAlloc], tuple[DaemonRun, ...]]
RouterDaemons = Callable[[LabFile, Allocation], tuple[DaemonRun, ...]]


@dataclass(frozen=True)
class L2Need:
    """The backend's nodes (or pods) must share one L2 segment: each rack is its own segment."""

    need: str    # what the error says, e.g. "host-gw needs L2 adjacency"
    hint: str    # what would be right


@dataclass(frozen=True)
class Options:
    """A backend's own lab-file options, `spec.KEY`, and how to read them into its frozen dataclass.

    parse(mapping, check, path) returns the options (their defaults for an empty mapping) and
    reports problems through `check`, each at `path.FIELD`. The loader calls it for every
    backend's key, whichever backend the lab uses, and keeps the options of the lab's own
    backend in `LabSpec.options`."""

    key: str                                              # e.g. "vxlan": spec.vxlan
    fields: tuple[str, ...]                               # the keys spec.KEY may have
    parse: Callable[[dict, DocChecker, str], Any]
    # check_nodes(options, nodes, check, path): the parsed options checked against the lab's nodes
    # (e.g. bgp's route reflectors name nodes), returning the options to keep; None: nothing to check
    check_nodes: Callable[[Any, tuple[NodeSpec, ...], DocChecker, str], Any] | None = None


@dataclass(frozen=True)
class BackendKind:
    """One backend (a spec.backend value): its steps for nodes and pods, what it needs of the kernel and
    the underlay, its encapsulation overhead, its lab-file options and the daemons it starts."""

    name: str                              # the lab file's spec.backend value
    node_steps: NodeSteps                  # joins one node's pods to the other nodes
    link_kinds: tuple[str, ...] = ()       # kernel link kinds it creates, checked before building
    overhead: int = 0                      # encapsulation bytes: pod MTU = underlay MTU - overhead
    pod_steps: PodSteps | None = None      # a pod's eth0 and routes, when pods sit on the underlay
    l2: L2Need | None = None               # set when it cannot cross the VPC router between racks
    flannel: bool = False                  # writes flannel's /run/flannel/subnet.env on each node
    options: Options | None = None         # its spec.KEY options, when it has some
    node_daemons: NodeDaemons | None = None   # daemons each node runs (BIRD), started after the build
    router_daemons: RouterDaemons | None = None   # daemons the VPC namespace runs (BIRD between racks)

    @property
    def pods_on_underlay(self) -> bool:
        """Pods hang off their node's uplink (no cni0, no veth): their traffic skips the node's stack."""
        return self.pod_steps is not None

    @property
    def holds_policies(self) -> bool:
        """NetworkPolicies live in the node namespaces, so pod traffic must cross them."""
        return not self.pods_on_underlay
