"""Names every layer shares: interface names, namespace names, the lab-name rule. Imports nothing of netlab."""
from __future__ import annotations

import re
from enum import StrEnum
from typing import Protocol

NODE_UPLINK = "eth0"     # a node's port on its rack's VPC bridge
POD_IF = "eth0"          # a pod's interface, as the CNI plugins name it
BRIDGE = "cni0"          # the CNI bridge plugin's bridge in each node

# Lab names are DNS-1123 labels, short because every namespace name and interface alias
# starts with the lab's name.
MAX_LAB_NAME = 24
LAB_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class Role(StrEnum):
    """What a namespace is for; part of its mark (kernel/inventory.py)."""
    VPC = "vpc"
    NODE = "node"
    POD = "pod"


class PodName(Protocol):
    namespace: str
    name: str


def is_lab_name(text: str) -> bool:
    return bool(LAB_NAME.match(text)) and len(text) <= MAX_LAB_NAME


def vpc_netns(lab: str) -> str:
    return f"{lab}.vpc"


def node_netns(lab: str, node: str) -> str:
    return f"{lab}.{node}"


def pod_netns(lab: str, pod: PodName) -> str:
    return f"{lab}.{pod.namespace}.{pod.name}"
