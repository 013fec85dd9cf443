"""`netlab exec`, `ping` and `iperf`: commands and traffic inside a lab's namespaces."""
from __future__ import annotations

import json
import os
import sys

import click

from ..errors import InputError, NetlabError
from ..kernel.privileges import require_privileges
from ..ops import targets


@click.command("exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": True})
@click.argument("target")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--name", "lab_name", help="The lab, when several are up.")
@click.pass_context
def exec_(ctx, target, command, lab_name):
    """Run COMMAND inside a pod (all its namespaces, root's powers) or a node: netlab exec web -- ip route"""
    argv = list(command[1:] if command[:1] == ("--",) else command)
    if not argv:
        raise InputError("give the command after --, e.g. netlab exec web -- ip route")
    require_privileges("exec")
    where = targets.resolve(target, lab_name)
    from ..kernel import netns, sandbox   # lazily: ctypes and libc only for the command that enters a namespace
    targets.check_owned(where)
    try:
        fd = netns.open_ns(where.netns)
    except FileNotFoundError:
        raise NetlabError(f"{where.kind} {where.name}'s namespace {where.netns} is gone: "
                          f"run `netlab up` again to rebuild lab {where.lab!r}")
    sys.stdout.flush()
    if where.kind == "pod":
        pod = where.record.pod(where.name)
        recorded = pod.sandbox.pid if pod and pod.sandbox else None
        init = sandbox.init_of(where.lab, os.fstat(fd).st_ino, recorded)
        if init is None:
            raise NetlabError(f"pod {where.name} has no running sandbox: run `netlab up` again to restart it")
        os.close(fd)
        # every namespace of the pod (its hostname, /etc/hosts, processes), with root's powers: the operator
        os.execvp("nsenter", ["nsenter", f"--target={init.pid}", "--mount", "--uts", "--ipc", "--net", "--pid",
                              "--", *argv])
    if where.kind == "node":
        # a node's command sees the node's own /run and /etc entries and its hostname (its own UTS namespace)
        from ..kernel import nodefs   # lazily, as above
        from ..ops import state
        os.close(fd)
        root = nodefs.prepare(nodefs.node_root(state.lab_dir(where.lab), where.name))
        argv = nodefs.wrap(where.netns, root, where.name, argv)
        os.execvp(argv[0], argv)
    switch = netns.Switcher()
    switch.enter(fd)   # this process becomes the command
    try:
        os.execvp(argv[0], argv)
    except OSError as err:   # as a shell: 127 not found, 126 found but not runnable
        switch.go_home()
        missing = isinstance(err, FileNotFoundError)
        click.echo(f"error: {'command not found' if missing else err.strerror}: {argv[0]}", err=True)
        ctx.exit(127 if missing else 126)


@click.command()
@click.argument("src")
@click.argument("dst")
@click.option("-c", "--count", default=3, show_default=True)
@click.option("--timeout", default=1.0, show_default=True, help="Seconds to wait for each reply.")
@click.option("--name", "lab_name", help="The lab, when several are up.")
@click.pass_context
def ping(ctx, src, dst, count, timeout, lab_name):
    """ping from SRC to DST (pod, namespace/pod, node, or IP); ping's exit code."""
    from ..tools import traffic
    require_privileges("ping")
    s = targets.resolve(src, lab_name)
    d = targets.resolve(dst, lab_name or s.lab, allow_ip=True)
    targets.check_owned(s)
    click.echo(f"{s.name} ({s.ip}) -> {d.name} ({d.ip})", err=True)
    ctx.exit(traffic.ping(s, d, count, timeout) or 0)


@click.command()
@click.argument("src")
@click.argument("dst")
@click.option("-t", "--time", "seconds", default=3.0, show_default=True, help="Seconds to send.")
@click.option("-P", "--parallel", default=1, show_default=True)
@click.option("--udp", is_flag=True)
@click.option("--json", "as_json", is_flag=True, help="iperf3's full JSON report.")
@click.option("--name", "lab_name", help="The lab, when several are up.")
def iperf(src, dst, seconds, parallel, udp, as_json, lab_name):
    """Throughput from SRC to DST with iperf3 (server in DST, client in SRC)."""
    from ..tools import traffic
    require_privileges("iperf")
    s = targets.resolve(src, lab_name)
    d = targets.resolve(dst, lab_name or s.lab)
    targets.check_owned(s)
    targets.check_owned(d)
    report = traffic.iperf(s, d, seconds, parallel, udp)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    summary = traffic.iperf_summary(report)
    click.echo(f"{s.name} ({s.ip}) -> {d.name} ({d.ip}): "
               f"{summary['received_bps'] / 1e9:.2f} Gbit/s received, "
               f"{summary['retransmits']} retransmits, {summary['seconds']:.1f}s")
