"""`netlab node stop|start NODE`: cut a node off (its daemons and its underlay link), and bring it back."""
from __future__ import annotations

import click

from ..errors import InputError
from ..ops import targets


@click.group()
def node():
    """Inject a node failure and recover from it."""


def _node(name: str, lab_name: str | None) -> targets.Target:
    where = targets.resolve(name, lab_name)
    if where.kind != "node":
        raise InputError(f"{name!r} is a pod; `netlab node` takes a node name")
    return where


@node.command()
@click.argument("name")
@click.option("--name", "lab_name", help="The lab, when several are up.")
def stop(name, lab_name):
    """Stop NAME's daemons (BIRD) and cut its underlay link."""
    from ..ops import node as node_ops   # lazily: start-up time (pyroute2)
    done = node_ops.stop(_node(name, lab_name))
    click.echo(f"node {done.node} stopped: {done.daemons} daemon(s) stopped, link {done.link} down")


@node.command()
@click.argument("name")
@click.option("--name", "lab_name", help="The lab, when several are up.")
def start(name, lab_name):
    """Restore NAME's underlay link and start its daemons again."""
    from ..ops import node as node_ops   # lazily: start-up time (pyroute2)
    done = node_ops.start(_node(name, lab_name))
    click.echo(f"node {done.node} started: link {done.link} up, {done.daemons} daemon(s) started")
