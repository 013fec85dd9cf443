"""`netlab apply FILE` and `netlab policy explain`: NetworkPolicies of a running lab."""
from __future__ import annotations

from ipaddress import IPv4Address, ip_address

import click

from ..core import ipam
from ..core.policy import evaluate
from ..errors import InputError
from ..model.lab import LabFile, Pod, Protocol
from ..ops import policy as converge
from ..ops import targets
from ..spec import loader


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
def apply(file):
    """Converge the NetworkPolicies of FILE's running lab; rebuilds nothing."""
    result = converge.apply_file(loader.load_file(file))
    changes = [f"+{k}" for k in result.added] + [f"-{k}" for k in result.removed]
    click.echo(f"lab {result.lab}: {len(result.policies)} NetworkPolicies enforced on {result.nodes} nodes"
               + (f" ({', '.join(changes)})" if changes else " (no change in the set of policies)")
               + f" in {result.seconds:.2f}s")


@click.group()
def policy():
    """NetworkPolicy of a running lab."""


@policy.command()
@click.argument("src")
@click.argument("dst")
@click.argument("port")
@click.option("--name", "lab_name", help="The lab, when several are up.")
def explain(src, dst, port, lab_name):
    """Why SRC may or may not reach DST on PORT[/PROTO] (pods as name or namespace/name, or IPs)."""
    number, protocol = parse_port(port)
    record = targets.load_lab(lab_name)
    applied = converge.applied_file(record)
    if applied.stale:
        click.echo(f"note: {applied.lab.source} has changed since its policies were applied; this explains "
                   f"the file — `netlab apply {applied.lab.source}` enforces it", err=True)
    labfile = applied.lab
    pod_ips = ipam.allocate(labfile).pod_ips
    click.echo(evaluate.explain(labfile, pod_ips, find_end(labfile, src, "SRC"), find_end(labfile, dst, "DST"),
                                number, protocol))


def parse_port(text: str) -> tuple[int, Protocol]:
    """80, 80/tcp, 53/UDP; TCP when no protocol is given."""
    number, _, proto = text.partition("/")
    try:
        port = int(number)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise InputError(f"PORT {text!r}: give a port number 1-65535, optionally /tcp, /udp or /sctp (e.g. 80/tcp)")
    try:
        return port, Protocol((proto or "TCP").upper())
    except ValueError:
        raise InputError(f"PORT {text!r}: unknown protocol {proto!r}; use tcp, udp or sctp") from None


def find_end(lab: LabFile, text: str, what: str) -> Pod | IPv4Address:
    """A pod as namespace/name or a unique name, or an IPv4 address."""
    found = [p for p in lab.pods if text in (p.key, p.name)]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise InputError(f"{what} {text!r} is ambiguous: " + ", ".join(p.key for p in found)
                         + "; write namespace/name")
    try:
        address = ip_address(text)
    except ValueError:
        address = None
    if isinstance(address, IPv4Address):
        return address
    known = [p.key for p in lab.pods]
    raise InputError(f"{what}: no pod named {text!r} in lab {lab.lab.name}; known: {', '.join(known[:20])}"
                     + (" ..." if len(known) > 20 else "") + " (or give an IPv4 address)")
