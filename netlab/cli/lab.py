"""`netlab up`, `down` and `validate`: a lab's life cycle."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from .. import names
from .progress import print_timings, with_progress

if TYPE_CHECKING:
    from ..ops.record import LabRecord


@click.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Print the plan; touch nothing.")
@click.option("--timings", is_flag=True, help="Print the time each stage took (stderr).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def up(file, dry_run, timings, quiet):
    """Build the lab in FILE (default: the packaged 2-node vxlan lab); again: converge it."""
    from ..core import ipam, plan
    from ..spec import loader
    labfile = loader.load_file(file)
    if dry_run:
        the_plan = plan.build(labfile, ipam.allocate(labfile))
        click.echo(plan.render(the_plan), nl=False)
        if labfile.policies:
            from ..core.policy.nft import node_ruleset   # lazily: the compiler only when there are policies
            for node in the_plan.alloc.nodes:
                click.echo(f"\n# NetworkPolicy: nft -f - inside {names.node_netns(labfile.lab.name, node)}")
                click.echo(node_ruleset(labfile, the_plan.alloc.pod_ips, node), nl=False)
        _print_kube_proxy(labfile, the_plan)
        return
    from ..ops import lab as lab_ops   # lazily: the kernel layer (pyroute2) only when building

    def build(step):
        if step:
            step(1 + len(labfile.lab.nodes) + len(labfile.pods))   # one step per namespace
        return lab_ops.up(labfile, progress=step)
    result = with_progress(f"building {labfile.lab.name}", quiet, build)
    name = labfile.lab.name
    if result.started:
        _wait_for_ports(result.record)
    click.echo(f"lab {name} is up: {len(result.plan.alloc.nodes)} nodes, {len(labfile.pods)} pods, "
               f"backend {labfile.lab.backend.value} — {result.created} namespaces created, "
               f"{result.kept} unchanged, {result.removed} removed, {result.started} containers started "
               f"in {sum(t for _, t in result.timings.stages):.2f}s")
    if timings:
        print_timings(result.timings)
    if not quiet and sys.stdout.isatty():
        click.echo(f"next: netlab status --name {name} · netlab ping SRC DST · netlab down --name {name}")


def _wait_for_ports(record: LabRecord) -> None:
    """Containers were just started: give them a moment to bind their declared ports, so the
    next command (a curl, a probe) does not meet a server still starting. Not asked again: the
    pods whose ports the lab's responder holds, and those `up` found ready for a Service."""
    from ..kernel import labresponder
    ready = {e.pod for svc in record.services for e in svc.endpoints if e.ready}
    if all(not pod.ports or not pod.containers or pod.key in ready
           or labresponder.serves(pod.containers, record.responder) for pod in record.pods):
        return
    from ..model.lab import Protocol
    from ..tools.probe import Check, declared_ports, wait_for_listeners
    checks = [Check(port, proto) for proto in (Protocol.TCP, Protocol.UDP)
              for port in declared_ports(record, proto)]
    missing = wait_for_listeners(record, checks, limit=5.0) if checks else []
    if missing:
        click.echo(f"note: not listening yet after 5 s: {', '.join(missing[:5])}"
                   + (" ..." if len(missing) > 5 else "") + " (see netlab logs)", err=True)


@click.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--name", "lab_name", help="The lab to remove (instead of FILE).")
@click.option("--all", "all_labs", is_flag=True, help="Every lab netlab made on this machine.")
@click.option("--timings", is_flag=True, help="Print the time each stage took (stderr).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def down(file, lab_name, all_labs, timings, quiet):
    """Remove a lab: its namespaces and containers. Only what netlab's marks prove it made."""
    from ..kernel.privileges import require_privileges
    from ..ops import teardown   # lazily, and only it: no lab file, plan or backend is needed to remove a lab
    if all_labs:
        require_privileges("down")
        names = teardown.all_lab_names()
    elif lab_name:
        names = [lab_name]
    else:
        from ..spec import loader
        names = [loader.load_file(file).lab.name]
    if not names:
        click.echo("no lab is up")
    for name in names:
        result = with_progress(f"removing {name}", quiet, lambda step: teardown.down(name, progress=step))
        click.echo(f"lab {name}: removed {result.removed} namespaces, stopped {result.stopped} processes")
        if timings:
            print_timings(result.timings)
        for other in result.left_alone:
            click.echo(f"  left alone: /run/netns/{other} (no netlab mark of lab {name}; not ours)")


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
def validate(file):
    """Check a lab file; needs no root and touches nothing."""
    from ..core import ipam, plan
    from ..spec import loader
    labfile = loader.load_file(file)   # the backend's checks (NetworkPolicies it cannot hold) run in here
    the_plan = plan.build(labfile, ipam.allocate(labfile))
    click.echo(f"{file}: ok — lab {labfile.lab.name}, backend {labfile.lab.backend.value}, "
               f"{len(labfile.lab.nodes)} nodes, {len(labfile.pods)} pods, "
               f"{len(labfile.policies)} network policies, {len(the_plan.namespaces)} namespaces")


def _print_kube_proxy(labfile, the_plan) -> None:
    """Each node's kube-proxy ruleset, as written once every selected pod is ready."""
    from ..core import endpoints, kubeproxy, kubeproxy_iptables   # lazily: only for a dry run with Services
    from ..core.clusterip import KUBERNETES_SERVICE
    if not any(svc.key != KUBERNETES_SERVICE for svc in labfile.services):
        return
    ready = {pod.key: True for pod in labfile.pods}
    iptables = labfile.lab.kube_proxy_mode == "iptables"
    for node, proxy in endpoints.node_proxies(labfile, the_plan.alloc, ready).items():
        where = names.node_netns(labfile.lab.name, node)
        if iptables:
            click.echo(f"\n# kube-proxy (iptables mode, every pod ready): iptables-restore inside {where}")
            click.echo(kubeproxy_iptables.ruleset(proxy), nl=False)
        else:
            click.echo(f"\n# kube-proxy (nftables mode, every pod ready): nft -f - inside {where}")
            click.echo(kubeproxy.ruleset(proxy), nl=False)
