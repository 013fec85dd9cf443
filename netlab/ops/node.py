"""`netlab node stop|start NODE`: a node failure to inject, and its recovery.

stop: the node's daemons (BIRD) are stopped — BIRD tells its peers as it shuts down (a BGP
Cease), so they withdraw the node's routes at once rather than when the hold time runs out —
and its underlay link is cut (the node's port on the VPC bridge goes down). start: the link
comes back and the daemons start again with the configuration `up` wrote. Pods and namespaces
are untouched throughout.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core.plan import Role, node_vpc_port
from ..errors import NetlabError
from ..kernel import daemons, rtnl
from ..kernel.apply import Kernel
from ..kernel.privileges import require_privileges
from ..spec import loader
from . import state
from .lab import make_plan, start_daemons
from .targets import Target


@dataclass
class NodeChange:
    """What `netlab node stop|start` did to a node: the daemons stopped or started, the VPC port set."""

    node: str
    daemons: int      # stopped or started
    link: str         # the VPC port set down or up


def _node_plan(target: Target):
    record = target.record
    source = record.source
    lab = loader.load_file(None if source == "<default lab>" else source)
    the_plan = make_plan(lab)
    planned = the_plan.find(Role.NODE, target.name)
    built = record.fingerprints.get(target.netns)
    if planned is None or planned.fingerprint != built:
        raise NetlabError(f"node {target.name}: the lab file {source} no longer describes the node as it was "
                          "built; run `netlab up` first")
    return the_plan, planned


def _set_port(target: Target, up: bool) -> str:
    underlay = target.record.underlay
    if underlay is None:
        raise NetlabError(f"lab {target.lab!r} has no VPC namespace recorded")
    vpc = underlay.netns
    port = node_vpc_port(target.name)
    with Kernel() as kernel:
        handle = kernel.attach(vpc)
        handle.nl.call(rtnl.set_link(handle.index(port), up=up))
    return f"{vpc}:{port}"


def stop(target: Target) -> NodeChange:
    require_privileges("node stop")
    with state.locked(target.lab):
        _, planned = _node_plan(target)
        stopped = sum(daemons.stop(target.lab, target.name, target.netns, d.name) for d in planned.daemons)
        return NodeChange(target.name, stopped, _set_port(target, up=False))


def start(target: Target) -> NodeChange:
    require_privileges("node start")
    with state.locked(target.lab):
        the_plan, planned = _node_plan(target)
        link = _set_port(target, up=True)
        return NodeChange(target.name, start_daemons(the_plan, only=planned.name), link)
