"""`netlab dig`: a DNS lookup from inside a pod, with the pod's own /etc/resolv.conf."""
from __future__ import annotations

import click

from .traffic import exec_


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("pod")
@click.argument("query", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--name", "lab_name", help="The lab, when several are up.")
@click.pass_context
def dig(ctx, pod, query, lab_name):
    """Run dig inside POD: netlab dig POD NAME [TYPE] [dig options...], e.g. netlab dig client web +search

    dig runs in every namespace of the pod, so it asks the pod's nameserver (kube-dns,
    172.18.0.10 by default) and, with +search, walks the pod's search list as the pod's
    resolver does (dig alone does not: it takes NAME as given, or relative to the root)."""
    ctx.invoke(exec_, target=pod, command=("dig", *query), lab_name=lab_name)
