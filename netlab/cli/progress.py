"""Progress bars and stage timings on stderr, for the commands that build or remove."""
from __future__ import annotations

import sys

import click


def with_progress(label: str, quiet: bool, call):
    """call(progress) under a rich progress bar on a terminal; call(None) otherwise.

    progress(total) sets the number of steps (once known), progress() advances one."""
    if quiet or not sys.stderr.isatty():
        return call(None)
    from rich.console import Console   # lazily: rich only for a terminal
    from rich.progress import Progress
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def step(total=None):
            if total is not None:
                bar.update(task, total=total)
            else:
                bar.advance(task)
        return call(step)


def print_timings(timings) -> None:
    for stage, seconds in timings.stages:
        click.echo(f"  {stage:<18} {seconds * 1000:9.1f} ms", err=True)
