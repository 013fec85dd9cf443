"""`netlab bench`: the datapath comparison (one line in COMMANDS, netlab/cli/__init__.py)."""
from __future__ import annotations

import json
import sys

import click
from rich.console import Console

from ..errors import InputError
from ..core.backends import Backend
from ..names import MAX_LAB_NAME, is_lab_name
from ..tools.bench import report, session
from ..tools.bench.paths import BASELINE_BACKEND, lab_name
from ..tools.bench.runner import TEST_ALIASES, BenchTest



def parse_backends(text: str) -> tuple[Backend, ...]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    known = [b.value for b in Backend]
    wrong = [n for n in names if n not in known]
    if wrong or not names:
        raise InputError(f"--backends: {'unknown backend ' + ', '.join(map(repr, wrong)) if wrong else 'empty'}; "
                         f"give a comma-separated list of {', '.join(known)} (the veth baseline is always measured)")
    return tuple(dict.fromkeys(Backend(n) for n in names))


def parse_tests(text: str) -> tuple[BenchTest, ...]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    by_name = {**TEST_ALIASES, **{t.value.lower(): t for t in BenchTest}}
    wrong = [n for n in names if n.lower() not in by_name]
    if wrong or not names:
        raise InputError(f"--tests: {'unknown test ' + ', '.join(map(repr, wrong)) if wrong else 'empty'}; "
                         "give a comma-separated list of stream, rr, crr (or TCP_STREAM, TCP_RR, TCP_CRR)")
    return tuple(dict.fromkeys(by_name[n.lower()] for n in names))


def check_prefix(prefix: str, backends: tuple[Backend, ...]) -> None:
    longest = max([b.value for b in backends] + [BASELINE_BACKEND], key=len)
    if not is_lab_name(prefix) or not is_lab_name(lab_name(prefix, longest)):
        raise InputError(f"--lab-prefix: {prefix!r} must be lower-case letters, digits and '-', and short "
                         f"enough that {lab_name(prefix, longest)!r} has at most {MAX_LAB_NAME} characters")


@click.command()
@click.option("--backends", default="vxlan,host-gw", show_default=True,
              help="Comma-separated backends; each gets its own lab <prefix>-<backend>.")
@click.option("--tests", default="stream,rr,crr", show_default=True,
              help="Comma-separated: stream (iperf3), rr (iperf2 --bounceback), crr (wrk + nginx).")
@click.option("--duration", default=10, show_default=True, type=click.IntRange(1, 3600),
              help="Seconds per figure.")
@click.option("--parallel", default=1, show_default=True, type=click.IntRange(1, 256),
              help="Parallel streams / flows / connections (the seed's netperf run used 32).")
@click.option("--json", "as_json", is_flag=True, help="The contract's JSON on stdout (results, settings, machine).")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), help="Also draw grouped bars to FILE.png "
              "(needs matplotlib: pip install netlab-k8s[plot]).")
@click.option("--keep", is_flag=True, help="Leave the bench labs and baseline namespaces up (reused next run).")
@click.option("--lab-prefix", "prefix", default="bench", show_default=True,
              help="Names of the bench labs: <prefix>-<backend>, <prefix>-veth for the baseline.")
def bench(backends, tests, duration, parallel, as_json, plot_file, keep, prefix):
    """Datapath comparison: same-node, cross-node and a raw veth baseline; TCP_STREAM, TCP_RR, TCP_CRR.

    Builds a lab per backend (2 nodes, 3 pods), runs real tools inside the pods, prints every
    figure with its ratio to the baseline and the CPU time client and server used, and removes
    everything it built (unless --keep), also on Ctrl-C.
    """

    options = session.BenchOptions(parse_backends(backends), parse_tests(tests), duration, parallel,
                                   keep, prefix)
    check_prefix(prefix, options.backends)
    if plot_file:
        report.require_matplotlib()
    log = (lambda msg: click.echo(msg, err=True))
    result = session.run(options, log)
    machine = session.machine()
    if as_json:
        click.echo(json.dumps(report.as_json(result, machine), indent=2))
    else:
        console = Console() if sys.stdout.isatty() else Console(width=140)
        report.print_table(console, result, machine)
    if plot_file:
        report.plot(result, machine, plot_file)
        click.echo(f"plot written to {plot_file}", err=True)
