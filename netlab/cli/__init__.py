"""The `netlab` command (click). Exit codes: 0 ok, 2 bad input, 1 any other failure."""
from __future__ import annotations

import json
import os
import sys
import traceback

import click
from rich.console import Console

from . import lab as lab_ops
from . import loader, plan, render, state, targets, traffic
from .errors import InputError, NetlabError
from .policy import enforce

err_console = Console(stderr=True)


class Context:
    def __init__(self, debug: bool):
        self.debug = debug


def run(ctx: click.Context, fn, *args, **kwargs):
    """Call fn; turn netlab's errors into their exit codes, tracebacks only with --debug."""
    debug = ctx.find_root().obj.debug if ctx.find_root().obj else False
    try:
        return fn(*args, **kwargs)
    except InputError as err:
        for problem in err.problems:
            click.echo(f"error: {problem}", err=True)
        if len(err.problems) > 1:
            click.echo(f"{len(err.problems)} problems; nothing was built", err=True)
        if debug:
            traceback.print_exc()
        ctx.exit(2)
    except NetlabError as err:
        click.echo(f"error: {err}", err=True)
        if debug:
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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks and internal detail.")
@click.version_option(package_name="netlab-k8s", prog_name="netlab")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Kubernetes-style pod networks out of Linux network namespaces."""
    ctx.obj = Context(debug)


@main.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Print the plan; touch nothing.")
@click.option("--timings", is_flag=True, help="Print the time each stage took (stderr).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def up(ctx, file, dry_run, timings, quiet):
    """Build the lab in FILE (default: the packaged 2-node vxlan lab); again: converge it."""
    def go():
        labfile = loader.load_file(file)
        if dry_run:
            the_plan = lab_ops.make_plan(labfile)
            click.echo(plan.render(the_plan), nl=False)
            if labfile.policies:
                from .policy.nft import node_ruleset
                for node in the_plan.alloc.nodes:
                    click.echo(f"\n# NetworkPolicy: nft -f - inside {plan.node_netns(labfile.lab.name, node)}")
                    click.echo(node_ruleset(labfile, the_plan.alloc.pod_ips, node), nl=False)
            return
        def build(step):
            if step:
                step(1 + len(labfile.lab.nodes) + len(labfile.pods))   # one step per namespace
            return lab_ops.up(labfile, progress=step)
        result = _with_progress(f"building {labfile.lab.name}", quiet, build)
        name = labfile.lab.name
        if result.started:
            _wait_for_ports(name)
        click.echo(f"lab {name} is up: {len(result.plan.alloc.nodes)} nodes, {len(labfile.pods)} pods, "
                   f"backend {labfile.lab.backend.value} — {result.created} namespaces created, "
                   f"{result.kept} unchanged, {result.removed} removed, {result.started} containers started "
                   f"in {sum(t for _, t in result.timings.stages):.2f}s")
        if timings:
            _print_timings(result.timings)
        if not quiet and sys.stdout.isatty():
            click.echo(f"next: netlab status --name {name} · netlab ping SRC DST · netlab down --name {name}")
    run(ctx, go)


def _wait_for_ports(lab: str) -> None:
    """Containers were just started: give them a moment to bind their declared ports, so the
    next command (a curl, a probe) does not meet a server still starting."""
    from .model import Protocol
    from .probe import Check, declared_ports, wait_for_listeners
    record = state.load(lab) or {}
    checks = [Check(port, proto) for proto in (Protocol.TCP, Protocol.UDP)
              for port in declared_ports(record, proto)]
    missing = wait_for_listeners(record, checks, limit=5.0) if checks else []
    if missing:
        click.echo(f"note: not listening yet after 5 s: {', '.join(missing[:5])}"
                   + (" ..." if len(missing) > 5 else "") + " (see netlab logs)", err=True)


def _with_progress(label: str, quiet: bool, call):
    """call(progress) under a rich progress bar on a terminal; call(None) otherwise.

    progress(total) sets the number of steps (once known), progress() advances one."""
    if quiet or not sys.stderr.isatty():
        return call(None)
    from rich.progress import Progress
    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def step(total=None):
            if total is not None:
                bar.update(task, total=total)
            else:
                bar.advance(task)
        return call(step)


def _print_timings(timings) -> None:
    for stage, seconds in timings.stages:
        click.echo(f"  {stage:<18} {seconds * 1000:9.1f} ms", err=True)


@main.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--name", "lab_name", help="The lab to remove (instead of FILE).")
@click.option("--all", "all_labs", is_flag=True, help="Every lab netlab made on this machine.")
@click.option("--timings", is_flag=True, help="Print the time each stage took (stderr).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def down(ctx, file, lab_name, all_labs, timings, quiet):
    """Remove a lab: its namespaces and containers. Only what netlab's marks prove it made."""
    def go():
        if all_labs:
            lab_ops.require_privileges("down")
            names = lab_ops.all_lab_names()
        elif lab_name:
            names = [lab_name]
        else:
            names = [loader.load_file(file).lab.name]
        if not names:
            click.echo("no lab is up")
        for name in names:
            result = _with_progress(f"removing {name}", quiet, lambda step: lab_ops.down(name, progress=step))
            click.echo(f"lab {name}: removed {result.removed} namespaces, stopped {result.stopped} processes")
            if timings:
                _print_timings(result.timings)
            for other in result.left_alone:
                click.echo(f"  left alone: /run/netns/{other} (no netlab mark of lab {name}; not ours)")
    run(ctx, go)


@main.command()
@click.option("--name", "lab_name", help="One lab in detail.")
@click.option("--json", "as_json", is_flag=True, help="Data for scripts.")
@click.pass_context
def status(ctx, lab_name, as_json):
    """Labs, nodes and pods: IPs, CIDRs, namespaces, containers."""
    def go():
        console = Console() if sys.stdout.isatty() else Console(width=200)
        if lab_name:
            record = targets.load_lab(lab_name)
            if as_json:
                click.echo(json.dumps(render.status_json(record), indent=2))
            else:
                render.print_lab(console, record)
            return
        records = [r for r in (state.load(n) for n in state.labs()) if r]
        if as_json:
            click.echo(json.dumps({"labs": [render.status_json(r) for r in records]}, indent=2))
        elif not records:
            click.echo("no lab is up (start one with: netlab up [FILE])")
        elif len(records) == 1:
            render.print_lab(console, records[0])
        else:
            render.print_labs(console, records)
    run(ctx, go)


@main.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": True})
@click.argument("target")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--name", "lab_name", help="The lab, when several are up.")
@click.pass_context
def exec(ctx, target, command, lab_name):  # noqa: A001 - the command is called exec
    """Run COMMAND inside a pod's or node's network namespace: netlab exec web -- ip route"""
    def go():
        argv = list(command[1:] if command[:1] == ("--",) else command)
        if not argv:
            raise InputError("give the command after --, e.g. netlab exec web -- ip route")
        lab_ops.require_privileges("exec")
        where = targets.resolve(target, lab_name)
        from . import netns
        try:
            fd = netns.open_ns(where.netns)
        except FileNotFoundError:
            raise NetlabError(f"{where.kind} {where.name}'s namespace {where.netns} is gone: "
                              f"run `netlab up` again to rebuild lab {where.lab!r}")
        switch = netns.Switcher()
        switch.enter(fd)   # this process becomes the command
        sys.stdout.flush()
        try:
            os.execvp(argv[0], argv)
        except OSError as err:   # as a shell: 127 not found, 126 found but not runnable
            switch.go_home()
            missing = isinstance(err, FileNotFoundError)
            click.echo(f"error: {'command not found' if missing else err.strerror}: {argv[0]}", err=True)
            ctx.exit(127 if missing else 126)
    run(ctx, go)


@main.command()
@click.argument("src")
@click.argument("dst")
@click.option("-c", "--count", default=3, show_default=True)
@click.option("--timeout", default=1.0, show_default=True, help="Seconds to wait for each reply.")
@click.option("--name", "lab_name", help="The lab, when several are up.")
@click.pass_context
def ping(ctx, src, dst, count, timeout, lab_name):
    """ping from SRC to DST (pod, namespace/pod, node, or IP); ping's exit code."""
    def go():
        lab_ops.require_privileges("ping")
        s = targets.resolve(src, lab_name)
        d = targets.resolve(dst, lab_name or s.lab, allow_ip=True)
        click.echo(f"{s.name} ({s.ip}) -> {d.name} ({d.ip})", err=True)
        return traffic.ping(s, d, count, timeout)
    code = run(ctx, go)
    ctx.exit(code or 0)


@main.command()
@click.argument("src")
@click.argument("dst")
@click.option("-t", "--time", "seconds", default=3.0, show_default=True, help="Seconds to send.")
@click.option("-P", "--parallel", default=1, show_default=True)
@click.option("--udp", is_flag=True)
@click.option("--json", "as_json", is_flag=True, help="iperf3's full JSON report.")
@click.option("--name", "lab_name", help="The lab, when several are up.")
@click.pass_context
def iperf(ctx, src, dst, seconds, parallel, udp, as_json, lab_name):
    """Throughput from SRC to DST with iperf3 (server in DST, client in SRC)."""
    def go():
        lab_ops.require_privileges("iperf")
        s = targets.resolve(src, lab_name)
        d = targets.resolve(dst, lab_name or s.lab)
        report = traffic.iperf(s, d, seconds, parallel, udp)
        if as_json:
            click.echo(json.dumps(report, indent=2))
            return
        summary = traffic.iperf_summary(report)
        click.echo(f"{s.name} ({s.ip}) -> {d.name} ({d.ip}): "
                   f"{summary['received_bps'] / 1e9:.2f} Gbit/s received, "
                   f"{summary['retransmits']} retransmits, {summary['seconds']:.1f}s")
    run(ctx, go)


@main.command()
@click.argument("pod")
@click.option("-c", "--container", help="The container, when the pod has several.")
@click.option("--name", "lab_name", help="The lab, when several are up.")
@click.pass_context
def logs(ctx, pod, container, lab_name):
    """Print a container's output."""
    def go():
        where = targets.resolve(pod, lab_name)
        if where.kind != "pod":
            raise InputError(f"{pod!r} is a node; logs are kept for pod containers")
        namespace, name = where.name.split("/", 1)
        rec = next(p for p in where.record["pods"] if p["namespace"] == namespace and p["name"] == name)
        conts = rec.get("containers", [])
        if not conts:
            raise NetlabError(f"pod {where.name} has no running containers")
        if container is None and len(conts) > 1:
            raise InputError(f"pod {where.name} has containers {', '.join(c['container'] for c in conts)}: "
                             "pick one with -c")
        chosen = [c for c in conts if container in (None, c["container"])]
        if not chosen:
            raise InputError(f"pod {where.name} has no container {container!r}; it has "
                             + ", ".join(c["container"] for c in conts))
        try:
            with open(chosen[0]["log"], "rb") as f:
                sys.stdout.buffer.write(f.read())
        except FileNotFoundError:
            raise NetlabError(f"the log {chosen[0]['log']} is gone")
    run(ctx, go)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.pass_context
def validate(ctx, file):
    """Check a lab file; needs no root and touches nothing."""
    def go():
        labfile = loader.load_file(file)
        the_plan = lab_ops.make_plan(labfile)
        enforce.check_enforceable(labfile)   # NetworkPolicies need a backend that can hold them
        click.echo(f"{file}: ok — lab {labfile.lab.name}, backend {labfile.lab.backend.value}, "
                   f"{len(labfile.lab.nodes)} nodes, {len(labfile.pods)} pods, "
                   f"{len(labfile.policies)} network policies, {len(the_plan.namespaces)} namespaces")
    run(ctx, go)


from .commands import policy as policy_commands, probe as probe_command  # noqa: E402 - they import cli.run
main.add_command(probe_command.probe)
main.add_command(policy_commands.apply)
main.add_command(policy_commands.policy)
from .bench.cli import bench as bench_command  # noqa: E402 - it imports cli.run when called
main.add_command(bench_command)

if __name__ == "__main__":
    main()
