"""The `netlab` command: the click group; each command lives in its module of this package.

Exit codes travel with the errors (netlab.errors): click shows a NetlabError and exits with
its code, so commands need no wrapper. This group only adds what click does not: tracebacks
with --debug, one line for an unforeseen error, and 130 for Ctrl-C.
"""
from __future__ import annotations

import importlib
import sys
import traceback

import click

from ..errors import NetlabError
from ..kernel.signals import stops_as_interrupts

# name -> "module:attribute". Command modules are imported only when their command runs (or
# for --help), so `netlab --version` loads no pyroute2, rich or policy compiler: start-up time.
COMMANDS = {
    "up": "lab:up", "down": "lab:down", "validate": "lab:validate",
    "status": "status:status", "logs": "status:logs",
    "exec": "traffic:exec_", "ping": "traffic:ping", "iperf": "traffic:iperf",
    "probe": "probe:probe",
    "apply": "policy:apply", "policy": "policy:policy",
    "bench": "bench:bench",
    "rotate-keys": "wireguard:rotate_keys",
    "impair": "impair:impair",
    "graph": "see:graph", "capture": "see:capture", "trace": "see:trace",
    "node": "node:node",
    "dig": "dns:dig",
}


class NetlabGroup(click.Group):
    """Loads commands on demand and maps what is not a click exception to an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(f"{__name__}.{module}"), attr)

    def invoke(self, ctx: click.Context):
        debug = bool(ctx.params.get("debug"))
        try:
            with stops_as_interrupts():   # SIGTERM and SIGHUP as Ctrl-C: up rolls back, down finishes
                return super().invoke(ctx)
        except NetlabError as err:
            if not debug:
                raise   # click shows it and exits with its code
            err.show()
            traceback.print_exc()
            ctx.exit(err.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except Exception as err:  # anything unforeseen: one line, the traceback with --debug
            click.echo(f"error: {type(err).__name__}: {err} (run with --debug for the traceback)", err=True)
            if debug:
                traceback.print_exc()
            ctx.exit(1)


@click.group(cls=NetlabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks and internal detail.")
@click.version_option(package_name="netlab-k8s", prog_name="netlab")
def main(debug: bool) -> None:
    """Kubernetes-style pod networks out of Linux network namespaces."""


if __name__ == "__main__":
    sys.exit(main())
