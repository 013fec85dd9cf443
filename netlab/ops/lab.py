"""The orchestrator: every stage of `up`, top to bottom (`down` is ops/teardown.py, re-exported here).

load → allocate → plan → check the kernel → apply (create what is missing, rebuild what
changed, remove what is gone) → start containers → record state.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from ..core import backends, ipam, plan, resolvconf
from ..kernel import daemons, labresponder, limits, netns, nodefs, procs, sandbox, signals
from . import dns, impair, services, state
from .record import (LabRecord, Networking, NamespaceRecord, NodeRecord, PodRecord, PortRecord, SandboxRecord,
                     Underlay)
from ..kernel.apply import LIMIT_HINTS, Kernel, probe_link_kinds
from ..kernel.kernelmods import modprobe_hint, not_loaded
from .. import names
from ..errors import KernelFeatureMissing, NetlabError
from ..kernel.inventory import Mark, owned
from ..model.lab import DnsPolicy, LabFile, Pod
from ..core.plan import NetnsPlan, Plan, Role
from ..kernel import policy as enforce
from . import wireguard
from ..kernel.privileges import require_privileges
from .teardown import Timings, remove_placeholders, stop_containers, unpublish_all
from .teardown import DownResult, all_lab_names, down  # noqa: F401 (callers use lab.down)


@dataclass
class UpResult:
    """What `up` did: its plan, the namespaces it created, removed and kept, the containers it started."""

    plan: Plan
    created: int
    removed: int
    kept: int
    started: int
    timings: Timings
    record: LabRecord   # what state.json now holds


def make_plan(lab: LabFile) -> Plan:
    return plan.build(lab, ipam.allocate(lab))


def check_kernel(lab: LabFile, held: list[int] | None = None) -> "wireguard.Implementation | None":
    """Fail before anything is built when the kernel lacks a link kind the lab needs (and, for
    the wireguard backend, say which implementation will run, or that neither can).

    A kind whose module is on disk but not loaded is refused, never tried: trying would make
    the kernel load the module, and netlab changes nothing outside its own namespaces."""
    kinds = backends.required_link_kinds(lab)
    unloaded = not_loaded([backends.kernel_module(kind) for kind in kinds])
    if unloaded:
        raise KernelFeatureMissing(
            f"backend {lab.lab.backend.value!r} needs the kernel module(s) {', '.join(unloaded)}, which this "
            "kernel has but has not loaded; netlab never loads a module itself (some change every namespace "
            "as they load, the host's included); nothing was created — load them first: "
            + modprobe_hint(unloaded))
    missing = probe_link_kinds(kinds, held)
    if missing:
        raise KernelFeatureMissing(
            f"this kernel cannot create {', '.join(backends.kernel_option(k) for k in missing)} links, "
            f"which backend {lab.lab.backend.value!r} needs (the option is off or the module is missing); "
            "nothing was created — choose another backend, or load the module (modprobe) and retry")
    return wireguard.check(lab)


def check_programs(the_plan: Plan) -> None:
    """Fail before anything is built when a daemon the backend runs in each node is not installed."""
    missing = daemons.missing_programs([d for ns in the_plan.namespaces for d in ns.daemons])
    if missing:
        raise KernelFeatureMissing(
            f"backend {the_plan.lab.lab.backend.value!r} runs "
            + ", ".join(f"`{d.argv[0]}` (Debian package {d.package})" for d in missing)
            + " in every node, and it is not installed; nothing was created — install it: apt-get install "
            + " ".join(sorted({d.package for d in missing})))


def start_daemons(the_plan: Plan, only: str | None = None) -> int:
    """Start each node's planned daemons that are not running (a kept node's keep theirs); `only`: one
    namespace's. Logs as wireguard-go's: logs/node.<node>.<daemon>.log."""
    lab = the_plan.lab.lab.name
    logs = state.lab_dir(lab) / "logs"
    started = 0
    for ns in the_plan.namespaces:
        if only is not None and ns.name != only:
            continue
        host = plan.daemon_host(ns)
        for daemon in ns.daemons:
            if daemons.running(lab, host, ns.name, daemon.name):
                continue
            root = nodefs.node_root(state.lab_dir(lab), host)
            try:
                daemons.start(lab, host, ns.name, root, daemon, logs / f"node.{host}.{daemon.name}.log")
            except OSError as err:
                raise NetlabError(f"{host}: {daemon.name} could not start: {describe_failure(err)}") from err
            started += 1
    return started


def up(lab: LabFile, progress=None) -> UpResult:
    held: list[int] = []   # the link-kind probe's namespace, dropped once the lab is built (probe_link_kinds)
    try:
        return _up(lab, progress, held)
    finally:
        for fd in held:
            os.close(fd)


def _up(lab: LabFile, progress, held: list[int]) -> UpResult:
    timings = Timings()
    the_plan = make_plan(lab)
    timings.mark("plan")
    require_privileges("up")
    limits.raise_open_files()
    wg_implementation = check_kernel(lab, held)
    enforce.check_features(lab)
    services.check_tools(lab)
    impair.preflight(lab)
    check_programs(the_plan)
    dns.check(lab)
    labresponder.check_kernel({proto for ns in the_plan.namespaces for run in ns.containers if not run.argv
                               for _, proto in run.ports})
    timings.mark("kernel check")
    name = lab.lab.name
    with state.locked(name), Kernel() as kernel:
        old = state.load(name)
        remove_placeholders(name, old)    # a killed run's half-made names, stamped as ours
        existing = owned(kernel, name)
        _refuse_foreign(the_plan, existing)
        keep = _kept(the_plan, old, existing)
        fresh_lab = not existing
        remove = [ns for ns in existing if ns not in keep]
        create = [ns for ns in the_plan.namespaces if ns.name not in keep]
        timings.mark("inventory")
        stop_containers(name, old, remove, existing)
        for ns_name in reversed(remove):
            kernel.dismantle(ns_name)   # frees names/MACs/IPs held in kept namespaces before the rebuild
            kernel.release(ns_name)
            netns.unpublish(ns_name)
        _forget_removed_pods(kernel, name, old, remove)
        timings.mark("remove changed")
        record = replace(_record(lab, the_plan, old, keep, status="building"),
                         pending=tuple(ns.name for ns in create))
        state.save(name, record)
        running: dict[str, PodRecord] = {}   # pods whose containers changed, filled in as they start
        launcher = early = None
        try:
            # the pod launcher's interpreter starts while the network is built (no preexec_fn: safe
            # here); it keeps a descriptor of /run/netns, which must already be the mount point
            # the namespaces are published on
            kernel.ready_dir()
            if any(ns.role is Role.POD for ns in the_plan.namespaces):
                launcher = sandbox.Launcher().spawn()
            wireguard.prepare(kernel, lab, the_plan, wg_implementation)
            _build(kernel, the_plan, create, progress, timings)
            wireguard.converge(kernel, the_plan, {ns.name for ns in create})
            # the Services' rules and the zones a DNS pod's knotd starts with, as they will be once the
            # pods are ready; converged below when readiness is known (rewritten only if it differs)
            expected = _expected_readiness(lab, old, keep)
            early = services.start(lab, the_plan.alloc, record, expected)
            if dns.dns_pods(record.pods):
                dns.prepare(record, services.describe(lab, the_plan.alloc, expected))
            started, responder, served = _start_containers(launcher, the_plan, record, running)
            if launcher is not None:
                launcher.finish()   # it exits while the sockets are handed over; reaped below
            timings.mark("start containers")
            if served:
                started += _hand_over(lab.lab.name, responder, served, running)
                timings.mark(f"responder: {len(served)} containers' sockets")
            record = replace(record.with_pods(running), responder=responder)
            if start_daemons(the_plan):
                timings.mark("start node daemons")
            # policies are not in the namespace fingerprints: every run converges them (the nodes whose
            # recorded rules are behind are rewritten), nothing is rebuilt
            enforced = enforce.converge(lab, the_plan.alloc, record.policies, record.policy_nodes)
            timings.mark("network policies")
            if enforced is not None and not enforced.complete:
                record = record.with_enforced(enforced.policies, enforced.digest, enforced.held, False)
                raise NetlabError(enforce.failure(enforced, record.policies, lab.source, "up"))
            proxied = services.converge(lab, the_plan.alloc, record, frozenset(ns.name for ns in create), early)
            early = None
            timings.mark("services")
            if dns.converge(replace(record, services=record.services if proxied is None else proxied)):
                timings.mark("cluster DNS")
            impairments = impair.converge(lab, old.impairments if old else ())
        except BaseException as err:
            if launcher is not None:
                launcher.close()
            if early is not None:
                early.kill()
            record = record.with_pods(running)   # what runs is recorded: stopped by a rollback or a down
            with signals.shielded(reraise=False):   # a second Ctrl-C (or SIGTERM) waits for the rollback
                if fresh_lab:
                    _rollback(kernel, name, record)
                    outcome = f"netlab up rolled back: nothing of lab {name!r} is left"
                else:
                    state.save(name, replace(record, status="failed"))
                    outcome = (f"lab {name!r} is partly converged: fix the cause and run `netlab up` again, "
                               f"or remove it with `netlab down --name {name}`")
            if isinstance(err, (NetlabError, OSError)):
                raise NetlabError(f"{describe_failure(err)}\n{outcome}") from err
            if isinstance(err, KeyboardInterrupt):
                log(f"netlab: interrupted; {outcome}")
            raise
        if launcher is not None:
            launcher.close()
        record = _record(lab, the_plan, record, {ns.name for ns in the_plan.namespaces}, status="ready")
        if enforced is not None:
            record = record.with_enforced(enforced.policies, enforced.digest, enforced.held, True)
        if proxied is not None:
            record = replace(record, services=proxied)
        record = replace(record, impairments=impairments)
        state.save(name, record)
        timings.mark("record state")
    return UpResult(the_plan, len(create), len(remove), len(keep), started, timings, record)


def describe_failure(err: BaseException) -> str:
    """What failed, with what to do when it is a limit a big lab can reach."""
    if isinstance(err, OSError) and err.errno in LIMIT_HINTS:
        return f"{err} — {LIMIT_HINTS[err.errno]}"
    return str(err)


def _refuse_foreign(the_plan: Plan, existing: dict[str, Mark]) -> None:
    """Before anything changes: a planned name held by a namespace without this lab's mark
    is someone else's. netlab will neither build over it nor remove it."""
    taken = sorted({ns.name for ns in the_plan.namespaces} & set(netns.listed()) - set(existing))
    if taken:
        shown = ", ".join(f"/run/netns/{n}" for n in taken[:5]) + (" ..." if len(taken) > 5 else "")
        raise NetlabError(f"{shown}: already there without the mark of lab {the_plan.lab.lab.name!r}, "
                          "so not netlab's to build over or remove; nothing was changed — remove it "
                          "yourself, or rename the lab")


def _kept(the_plan: Plan, old: LabRecord | None, existing: dict[str, Mark]) -> set[str]:
    """Namespaces left as they are: present, marked, planned the same, and on kept parents."""
    recorded = old.fingerprints if old else {}
    keep: set[str] = set()
    for ns in the_plan.namespaces:   # parents come before children in plan order
        if ns.name not in existing or recorded.get(ns.name) != ns.fingerprint:
            continue
        if ns.depends_on and ns.depends_on not in keep:
            continue
        keep.add(ns.name)
    return keep


def _build(kernel: Kernel, the_plan: Plan, create: list[NetnsPlan], progress, timings: Timings) -> None:
    """Create and fill the namespaces, parents first; one timing stage per role (e.g. "build 1000 pods").

    One thread: creating namespaces, links and /run/netns entries serializes in the kernel
    (rtnl lock, the directory's lock); threads over two cores measured no faster.
    """
    lab = the_plan.lab.lab.name
    counts: dict[Role, int] = {}
    for ns in create:
        if counts and ns.role not in counts:
            _mark_built(timings, counts)
        counts[ns.role] = counts.get(ns.role, 0) + 1
        kernel.create(ns.name, Mark(lab, ns.role.value, ns.subject).text())
        kernel.apply(ns.name, ns.steps)
        if ns.role is Role.POD:
            kernel.release(ns.name)   # a pod is finished once built; keep fds low on big labs
        if progress:
            progress()
    _mark_built(timings, counts)


def _mark_built(timings: Timings, counts: dict[Role, int]) -> None:
    if not counts:
        timings.mark("build: none new")
        return
    role, count = list(counts.items())[-1]
    timings.mark(f"build {count} {role.value}{'s' if count != 1 else ''}")


def _start_containers(launcher: sandbox.Launcher | None, the_plan: Plan, record: LabRecord,
                      running_pods: dict[str, PodRecord]) -> tuple[int, procs.ProcRecord | None, list[Serve]]:
    """Every pod's sandbox (its init), then the containers not running yet, through the pod
    launcher (no fork with a preexec_fn in this threaded process; None: the lab has no pods); the
    containers with ports and no command are served by the lab's responder (kernel/labresponder.py),
    started (before the sandboxes, so its interpreter starts meanwhile) when the lab has some and
    stopped when it has none. Each pod whose sandbox or containers changed goes
    into `running_pods` as soon as they run (so that a failure further on still records, and
    stops, what runs). Returns how many containers started, the lab's responder, and the
    containers it is to serve (handed over by _hand_over)."""
    lab = the_plan.lab.lab.name
    started = 0
    lab_dir = state.lab_dir(lab)
    logs = lab_dir / "logs"
    logs.mkdir(mode=0o700, parents=True, exist_ok=True)
    inodes = {ns.name: netns.inode(ns.name) for ns in the_plan.namespaces if ns.role is Role.POD}
    # the inits already running (kept pods), found in one pass over /proc
    running_inits = {i.netns: i for i in sandbox.find_inits(lab, {ino for ino in inodes.values() if ino})}
    pods = {pod.key: pod for pod in the_plan.lab.pods}
    node_resolv = resolvconf.node_resolv_conf(nodefs.host_resolv_conf())
    vpc = names.vpc_netns(lab)
    responder = labresponder.find(lab, vpc, lab_dir)
    serves = any(not run.argv for ns in the_plan.namespaces for run in ns.containers)
    if responder is not None and not serves:
        labresponder.stop(responder, lab)   # no pod has ports served by it any more
        responder = None
    served: list[Serve] = []
    if launcher is None:
        return started, responder, served
    if responder is None and serves:
        responder = labresponder.start(launcher, lab, vpc, lab_dir)
    # the pods without a running init get a new one (their containers start afresh), several at once
    new = [(pod_rec, ns) for pod_rec in record.pods if (ns := the_plan.find(Role.POD, pod_rec.key)) is not None
           and running_inits.get(inodes[ns.name]) is None]
    fresh = _pod_inits(launcher, lab, lab_dir, [(pod_rec, ns, pod_resolv_conf(
        the_plan.lab, pods.get(pod_rec.key), pod_rec.namespace, node_resolv)) for pod_rec, ns in new],
        inodes, running_pods)
    runs: list[tuple[PodRecord, dict[str, procs.ProcRecord], sandbox.ContainerStart]] = []
    for pod_rec in record.pods:
        ns = the_plan.find(Role.POD, pod_rec.key)
        if ns is None:
            continue
        workdir = str(state.pods_dir(lab, pod_rec.node) / f"{pod_rec.namespace}.{pod_rec.name}")
        init = running_inits.get(inodes[ns.name])
        if init is None:
            init = fresh[pod_rec.key]
            pod_rec = running_pods[pod_rec.key]
        elif pod_rec.sandbox != SandboxRecord(init.pid, init.start):
            pod_rec = replace(pod_rec, sandbox=SandboxRecord(init.pid, init.start))
            running_pods[pod_rec.key] = pod_rec
        running = {rec.container: rec for rec in pod_rec.containers}
        todo = [run for run in ns.containers if not _runs(running.get(run.name), run, init, responder)]
        for run in todo:
            log = str(logs / f"{pod_rec.namespace}.{pod_rec.name}.{run.name}.log")
            if not run.argv:   # handed to the lab's responder below, recorded once it serves them
                served.append((labresponder.Served(pod_rec.key, ns.name, pod_rec.name, run.name, run.ports, log),
                               pod_rec, running))
                continue
            os.makedirs(workdir, mode=0o700, exist_ok=True)   # its containers' working directory
            runs.append((pod_rec, running, sandbox.ContainerStart(
                init.pid, ns.subject, run.name, tuple(run.argv), sandbox.container_env(ns.hostname, run.env),
                run.capabilities, workdir, log)))
    # several at once; every container that runs is recorded before a failure is raised
    failures = []
    for (pod_rec, running, start), rec in zip(runs, launcher.run_containers([s for _, _, s in runs]) if runs else []):
        if isinstance(rec, OSError):
            failures.append(f"pod {start.pod}: container {start.container!r} could not start "
                            f"`{' '.join(start.argv)}`: {describe_failure(rec)}")
            continue
        running[start.container] = rec
        started += 1
        running_pods[pod_rec.key] = replace(pod_rec, containers=tuple(running.values()))
    if failures:
        raise NetlabError("; ".join(failures[:3]) + (f" (and {len(failures) - 3} more)" if len(failures) > 3 else ""))
    return started, responder, served


# a container the lab's responder is to serve, its pod's record and the pod's containers so far
Serve = tuple[labresponder.Served, PodRecord, dict[str, procs.ProcRecord]]


def _hand_over(lab: str, responder: procs.ProcRecord | None, served: list[Serve],
               running_pods: dict[str, PodRecord]) -> int:
    """The served containers' sockets, made in their pods, handed to the lab's responder; each
    container recorded (with the responder's pid) once it serves them. Returns how many."""
    assert responder is not None
    lab_dir = state.lab_dir(lab)
    try:
        with labresponder.Control(responder, lab_dir) as control:
            control.drop(sorted({item.pod for item, _, _ in served}))   # sockets of an earlier sandbox, if any
            control.add([item for item, _, _ in served])
    except OSError as err:
        raise NetlabError(f"the lab's responder (pid {responder.pid}) did not take the pods' sockets: "
                          f"{describe_failure(err)}") from err
    for item, pod_rec, running in served:
        labresponder.note(item, responder, lab_dir)
        running[item.container] = replace(responder, pod=item.pod, container=item.container, log=item.log)
        running_pods[pod_rec.key] = replace(pod_rec, containers=tuple(running.values()))
    return len(served)


def _runs(rec: procs.ProcRecord | None, run, init: sandbox.Init, responder: procs.ProcRecord | None) -> bool:
    """Container `run` of a pod whose init is `init` runs as recorded in `rec`: its own process in the
    pod's PID namespace, or, for the built-in responder, the lab's responder that was handed its sockets."""
    if rec is None:
        return False
    if not run.argv:
        return responder is not None and (rec.pid, rec.start) == (responder.pid, responder.start)
    return procs.alive(rec) and sandbox.pidns_of(rec.pid) == init.pidns


def pod_resolv_conf(lab: LabFile, pod: Pod | None, namespace: str, node_resolv: str) -> str:
    """The pod's /etc/resolv.conf as kubelet has it written: its dnsPolicy and dnsConfig, the
    cluster DNS address when the lab runs cluster DNS, and `node_resolv` (the node's resolv.conf)."""
    cluster_dns = lab.networking.dns_service_ip if lab.lab.dns_enabled else None
    policy = pod.dns_policy if pod is not None else DnsPolicy.CLUSTER_FIRST
    return resolvconf.resolv_conf(policy, pod.dns_config if pod is not None else None, namespace,
                                  lab.networking.dns_domain, cluster_dns, node_resolv)


def _pod_inits(launcher: sandbox.Launcher, lab: str, lab_dir, new: list[tuple[PodRecord, NetnsPlan, str]],
               inodes: dict[str, int | None], running_pods: dict[str, PodRecord]) -> dict[str, sandbox.Init]:
    """New inits for pods (their PID namespaces and the others), each pod's files (hosts, and its
    resolv.conf text) written first; started several at once. Every init that runs is recorded in
    `running_pods` before a failure is raised, so that a rollback stops it."""
    starts = []
    (lab_dir / "pods").mkdir(mode=0o700, exist_ok=True)
    for node in {pod_rec.node for pod_rec, _, _ in new}:
        state.pods_dir(lab, node).mkdir(mode=0o700, exist_ok=True)
    for pod_rec, ns, resolv in new:
        files = str(state.pods_dir(lab, pod_rec.node) / f"{pod_rec.namespace}.{pod_rec.name}")
        sandbox.write_pod_files(files, pod_rec.ip, ns.hostname, resolv)
        starts.append(sandbox.PodStart(ns.subject, netns.path(ns.name), ns.hostname, files,
                                       dns.pod_mounts(lab, pod_rec)))
    inits: dict[str, sandbox.Init] = {}
    failures = []
    for (pod_rec, ns, _), rec in zip(new, launcher.start_pods(lab, starts) if starts else []):
        inode = inodes[ns.name]   # read once for every pod by the caller
        init = None if isinstance(rec, OSError) else sandbox.inspect_init(rec.pid, lab, {inode} if inode else set())
        if init is None:
            failures.append(f"pod {ns.subject}: its sandbox could not start: {describe_failure(rec)}"
                            if isinstance(rec, OSError) else
                            f"pod {ns.subject}: its sandbox (pid {rec.pid}) exited as it started")
            continue
        inits[pod_rec.key] = init
        running_pods[pod_rec.key] = replace(pod_rec, sandbox=SandboxRecord(init.pid, init.start), containers=())
    if failures:
        raise NetlabError("; ".join(failures[:3]) + (f" (and {len(failures) - 3} more)" if len(failures) > 3 else ""))
    return inits


def _expected_readiness(lab: LabFile, old: LabRecord | None, keep: set[str]) -> dict[str, bool]:
    """pod key → ready, as expected before the containers start: a kept pod as last recorded, any
    other pod ready (a wrong guess costs one more rule write and zone reload, never a wrong result)."""
    last = {e.pod: e.ready for svc in (old.services if old else ()) for e in svc.endpoints}
    kept = {p.key for p in (old.pods if old else ()) if p.netns in keep}
    return {pod.key: last.get(pod.key, True) if pod.key in kept else True for pod in lab.pods}


def _forget_removed_pods(kernel: Kernel, lab: str, old: LabRecord | None, removed: list[str]) -> None:
    """The kept nodes forget the MACs of removed pods: a pod made again at the same IP has a new one."""
    gone = set(removed)
    for pod in (old.pods if old else ()):
        node_ns = names.node_netns(lab, pod.node)
        if pod.netns in gone and node_ns not in gone and os.path.exists(netns.path(node_ns)):
            kernel.forget_neighbour(node_ns, pod.ip)


def _rollback(kernel: Kernel, lab: str, record: LabRecord) -> None:
    existing = owned(kernel, lab)
    stop_containers(lab, record, list(existing), existing)
    kernel.close()
    unpublish_all(list(reversed(list(existing))))
    remove_placeholders(lab, record)
    state.remove(lab)


def _record(lab: LabFile, the_plan: Plan, old: LabRecord | None, done: set[str], status: str) -> LabRecord:
    """The state record: what the lab is, and which namespaces are built as planned."""
    alloc = the_plan.alloc
    old_pods = {p.key: p for p in old.pods} if old else {}
    nodes = [NodeRecord(n.name, names.node_netns(lab.lab.name, n.name), str(n.pod_cidr), str(n.underlay_ip),
                        n.rack.name, plan.subnet_env(lab, n, the_plan.mtu)) for n in alloc.nodes.values()]
    pods = []
    for pod in lab.pods:
        ns_name = names.pod_netns(lab.lab.name, pod)
        previous = old_pods.get(pod.key)
        pods.append(PodRecord(
            pod.name, pod.namespace, pod.node, str(alloc.pod_ips[pod.key]), ns_name, pod.labels,
            tuple(PortRecord(p.container_port, p.protocol.value, p.name) for c in pod.containers for p in c.ports),
            previous.containers if previous and ns_name in done else (),
            previous.sandbox if previous and ns_name in done else None))
    return LabRecord(
        name=lab.lab.name, backend=lab.lab.backend.value,
        source=os.path.abspath(lab.source) if not lab.source.startswith("<") else lab.source,
        status=status, updated=datetime.now(timezone.utc).isoformat(timespec="seconds"), mtu=the_plan.mtu,
        networking=Networking(str(lab.networking.pod_subnet), str(lab.networking.service_subnet),
                              lab.networking.dns_domain),
        underlay=Underlay(str(lab.lab.underlay_subnet), lab.lab.underlay_mtu, names.vpc_netns(lab.lab.name)),
        namespaces={ns.name: NamespaceRecord(ns.role.value, ns.subject, ns.fingerprint)
                    for ns in the_plan.namespaces if ns.name in done},
        nodes=tuple(nodes), pods=tuple(pods),
        # the rules in the node namespaces outlive a failed run: keep knowing they are there
        policies=old.policies if old else (), policy_digest=old.policy_digest if old else None,
        # a node namespace built anew holds no rules: only kept ones still hold what was recorded
        policy_nodes={node: held for node, held in old.policy_nodes.items()
                      if names.node_netns(lab.lab.name, node) in done} if old else {},
        services=old.services if old else (), responder=old.responder if old else None)


def log(msg: str) -> None:
    print(msg, file=sys.stderr)
