"""`netlab impair`: delay, jitter, loss and rate on an interface of a pod or node (tc netem/tbf)."""
from __future__ import annotations

import json

import click

from ..kernel.privileges import require_privileges
from ..model.impairment import parse


@click.command()
@click.argument("target")
@click.option("--delay", help="Added delay, e.g. 10ms.")
@click.option("--jitter", help="Variation of the delay, e.g. 2ms (needs --delay).")
@click.option("--loss", help="Random loss, e.g. 1%.")
@click.option("--rate", help="Rate limit, e.g. 100mbit (tbf alone; netem's rate with the others).")
@click.option("--clear", is_flag=True, help="Remove the impairment: the kernel's default qdisc again.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--name", "lab_name", help="The lab, when several are up.")
def impair(target, delay, jitter, loss, rate, clear, as_json, lab_name):
    """Impair TARGET[:IFACE]'s egress (a pod or node; IFACE defaults to eth0), as containerlab's
    tools netem: netlab impair web --delay 10ms --loss 1% · netlab impair node-1:eth0 --rate 100mbit.
    With no option, show what the interface has."""
    from ..ops import impair as ops   # lazily: start-up time
    name, _, interface = target.partition(":")
    wanted = parse({"delay": delay, "jitter": jitter, "loss": loss, "rate": rate})
    require_privileges("impair")
    if wanted.is_empty() and not clear:
        now = ops.shown(name, interface or None, lab_name)
        click.echo(json.dumps(now.to_json()) if as_json else f"{target}: {now.summary()}")
        return
    if clear and not wanted.is_empty():
        raise click.UsageError("--clear takes no other option")
    made = ops.set_on(name, interface or None, wanted, lab_name)
    if as_json:
        click.echo(json.dumps(made.to_json()))
    else:
        click.echo(f"{target}: {'cleared' if wanted.is_empty() else wanted.summary()} "
                   f"(tc in {made.netns}, dev {made.interface})")
