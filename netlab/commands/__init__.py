"""CLI commands that live in their own modules; cli.py registers each with one line."""
from __future__ import annotations


def run(ctx, fn):
    """cli.run (exit codes, no tracebacks), imported when called: cli imports these modules."""
    from ..cli import run as cli_run
    return cli_run(ctx, fn)
