"""What the loader gathered from every document, before the checks across documents."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..model.checks import DocChecker
from ..model.lab import LabSpec, Namespace, Networking, Pod


@dataclass
class Collected:
    """What the loader has read so far from a lab's documents, each object with its document's checker."""

    networking: Networking | None = None
    lab: LabSpec | None = None
    namespaces: list[Namespace] = field(default_factory=list)
    pods: list[tuple[Pod, DocChecker]] = field(default_factory=list)
    policies: list = field(default_factory=list)   # (NetworkPolicy, DocChecker)
    lab_check: DocChecker | None = None
    node_paths: dict[str, str] = field(default_factory=dict)
    services: list = field(default_factory=list)      # (Service, DocChecker)
    deployments: list = field(default_factory=list)   # (LoadedDeployment, DocChecker)
    dns: tuple | None = None   # (LoadedDeployment, DocChecker): the cluster DNS Deployment, expanded last
    scale: dict | None = None  # spec.scale: the compact form's generated nodes and pods
