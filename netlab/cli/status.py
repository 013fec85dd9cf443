"""`netlab status` and `netlab logs`: what the running labs hold, read from their state."""
from __future__ import annotations

import json
import os
import sys

import click

from ..errors import InputError, NetlabError
from ..ops import state, targets


@click.command()
@click.option("--name", "lab_name", help="One lab in detail.")
@click.option("--json", "as_json", is_flag=True, help="Data for scripts.")
def status(lab_name, as_json):
    """Labs, nodes and pods: IPs, CIDRs, namespaces, containers."""
    from ..tools import render   # lazily: rich only when there is something to show
    if lab_name:
        record = targets.load_lab(lab_name)
        if as_json:
            click.echo(json.dumps(render.status_json(record), indent=2))
        else:
            render.print_lab(render.console(), record)
        return
    records = [r for r in (state.load(n) for n in state.labs()) if r]
    if as_json:
        click.echo(json.dumps({"labs": [render.status_json(r) for r in records]}, indent=2))
    elif not records:
        click.echo("no lab is up (start one with: netlab up [FILE])")
    elif len(records) == 1:
        render.print_lab(render.console(), records[0])
    else:
        render.print_labs(render.console(), records)


@click.command()
@click.argument("pod")
@click.option("-c", "--container", help="The container, when the pod has several.")
@click.option("--name", "lab_name", help="The lab, when several are up.")
def logs(pod, container, lab_name):
    """Print a container's output (root only, like the logs themselves)."""
    from ..kernel.privileges import require_privileges
    from ..names import LAB_NAME
    require_privileges("logs")
    where = targets.resolve(pod, lab_name)
    if where.kind != "pod":
        raise InputError(f"{pod!r} is a node; logs are kept for pod containers")
    rec = where.record.pod(where.name)
    conts = rec.containers if rec else ()
    if not conts:
        raise NetlabError(f"pod {where.name} has no running containers")
    if container is None and len(conts) > 1:
        raise InputError(f"pod {where.name} has containers {', '.join(c.container for c in conts)}: "
                         "pick one with -c")
    chosen = [c for c in conts if container in (None, c.container)]
    if not chosen:
        raise InputError(f"pod {where.name} has no container {container!r}; it has "
                         + ", ".join(c.container for c in conts))
    # the path is netlab's own, never one read from the state file
    namespace, name, cont = rec.namespace, rec.name, chosen[0].container
    if not all(LAB_NAME.match(part) for part in (namespace, name, cont)):
        raise NetlabError(f"the state of lab {where.lab!r} names pod {where.name!r} or its container in a "
                          "way the loader never would: not reading a log for it")
    log = state.lab_dir(where.lab) / "logs" / f"{namespace}.{name}.{cont}.log"
    try:
        fd = os.open(log, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NetlabError(f"the log {log} is gone")
    with os.fdopen(fd, "rb") as f:
        sys.stdout.buffer.write(f.read())
