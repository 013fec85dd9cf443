"""`netlab probe`: the reachability matrix between all pods of a running lab."""
from __future__ import annotations

import json
import sys
import time

import click
from rich.console import Console
from rich.table import Table

from ..errors import NetlabError
from ..kernel.privileges import require_privileges
from ..model.lab import Protocol
from ..ops import targets
from ..tools import probe as prober


@click.command()
@click.option("--name", "lab_name", help="The lab, when several are up.")
@click.option("--port", "ports", multiple=True, type=click.IntRange(1, 65535),
              help="Port to try (repeatable). Default: every containerPort the pods declare for the "
                   "protocol, or 80 when they declare none.")
@click.option("--protocol", type=click.Choice(["tcp", "udp"], case_sensitive=False), default="tcp",
              show_default=True, help="tcp: allowed = connection established; udp: allowed = a reply came back.")
@click.option("--timeout", type=click.FloatRange(0.05, 60.0), default=1.0, show_default=True,
              help="Seconds each try may take; a silent try that no policy logged dropping is tried again.")
@click.option("--json", "as_json", is_flag=True, help="Data for scripts: {\"results\": [...]}.")
def probe(lab_name, ports, protocol, timeout, as_json):
    """Try every ordered pair of pods on each port: what NetworkPolicy allows.

    Paced, denials read from the policy's drop log, lost packets tried again (netlab/tools/probe.py)."""
    require_privileges("probe")
    record = targets.load_lab(lab_name)
    proto = Protocol(protocol.upper())
    checks = [prober.Check(port, proto) for port in (sorted(set(ports)) or prober.default_ports(record, proto))]
    pods = prober.pods_of(record)
    if len(pods) < 2:
        raise NetlabError(f"lab {record.name} has {len(pods)} pod(s): a probe needs two")
    if record.status != "ready":
        click.echo(f"warning: lab {record.name} is {record.status}; results may be partial", err=True)
    missing = prober.wait_for_listeners(record, checks)
    for item in missing:
        click.echo(f"warning: not listening yet: {item}", err=True)
    started = time.perf_counter()
    run = prober.run(pods, checks, timeout, drop_log=bool(record.policies))
    results = run.results
    seconds = time.perf_counter() - started
    if as_json:
        click.echo(json.dumps({"results": [r.to_json() for r in results]}, indent=2))
    else:
        console = Console() if sys.stdout.isatty() else Console(width=max(100, 8 * len(pods) + 20))
        for check in checks:
            console.print(matrix(pods, [r for r in results if r.port == check.port], check))
    click.echo(summary(run, len(pods), len(checks), proto, seconds), err=True)


def summary(run: prober.ProbeRun, pods: int, ports: int, proto: Protocol, seconds: float) -> str:
    """The stderr lines after a probe: counts by outcome, and why anything was tried again."""
    count = {outcome: sum(r.outcome is outcome for r in run.results) for outcome in prober.Outcome}
    allowed = sum(r.allowed for r in run.results)
    parts = [f"{count[prober.Outcome.DENIED]} denied (logged by a policy's drop rule)"]
    if count[prober.Outcome.REFUSED]:
        parts.append(f"{count[prober.Outcome.REFUSED]} refused (nothing listening)")
    if count[prober.Outcome.UNREACHABLE]:
        parts.append(f"{count[prober.Outcome.UNREACHABLE]} unreachable")
    if count[prober.Outcome.TIMEOUT]:
        parts.append(f"{count[prober.Outcome.TIMEOUT]} no answer on {len(prober.RETRY_PAUSES) + 1} tries")
    lines = [f"{pods} pods, {ports} port(s) {proto.value}: {allowed} of {len(run.results)} allowed, "
             + ", ".join(parts) + f"; {run.tries} tries, {run.retried} attempts retried, in {seconds:.2f}s"]
    if run.neighbour_table_full:
        lines.append(f"note: the machine's neighbour table was full {run.neighbour_table_full} times "
                     "(net.ipv4.neigh.default.gc_thresh3, shared by all namespaces): the lost packets were retried")
    for name, why in sorted(run.drop_log_refused.items()):
        lines.append(f"warning: cannot read the policy drop log of {name} ({why}): a denial there shows as "
                     "no answer, after the retries")
    return "\n".join(lines)


def matrix(pods: list[prober.PodEnd], results: list[prober.Result], check: prober.Check) -> Table:
    """Rows: from; columns: to; `.` allowed, `X` not (cyclonus' notation), `-` the pod itself."""
    cell = {(r.src, r.dst): r.allowed for r in results}
    table = Table(title=f"{check.protocol.value} {check.port}   (rows: from, columns: to)", title_justify="left")
    table.add_column("from \\ to", style="bold")
    for pod in pods:
        table.add_column(pod.key, justify="center")
    for src in pods:
        row = []
        for dst in pods:
            if src.key == dst.key:
                row.append("[dim]-[/]")
            else:
                row.append("[green].[/]" if cell.get((src.key, dst.key)) else "[bold red]X[/]")
        table.add_row(src.key, *row)
    return table
