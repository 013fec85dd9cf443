"""kube-proxy in the node namespaces: readiness of pods, one `nft -f` per node, conntrack cleanup.

Each node's `table ip kube-proxy` is replaced in one nft transaction (the script deletes
and re-adds the table), as kube-proxy's own full sync does in one netlink batch. After the
rules change, conntrack entries of UDP Service traffic whose endpoint went away are
deleted with conntrack(8), as kube-proxy's CleanStaleEntries does: UDP has no handshake,
so such flows would keep going to a dead endpoint.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import Iterable, Mapping, Protocol as Shape

from . import labresponder, netns, procs
from ..errors import KernelFeatureMissing, NetlabError
from ..model.lab import Protocol
from .procs import ProcRecord

NFT = "nft"
IPTABLES_RESTORE = "iptables-restore"
CONNTRACK = "conntrack"
NFT_TIMEOUT = 30.0
NFT_TABLE = "kube-proxy"
READY_WAIT = 5.0   # seconds a just-started container gets to bind its declared ports


def check_tools(lab_name: str, mode: str = "nftables") -> None:
    tools = (NFT, CONNTRACK) + ((IPTABLES_RESTORE,) if mode == "iptables" else ())
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise KernelFeatureMissing(
            f"lab {lab_name!r} has Services, proxied by kube-proxy's {mode} rules, but {', '.join(missing)} "
            "is not installed; nothing was created — apt-get install nftables iptables conntrack")


class DeclaredPort(Shape):
    @property
    def port(self) -> int: ...
    @property
    def protocol(self) -> str: ...


class RunningPod(Shape):
    """What readiness reads of a recorded pod (ops.record.PodRecord has it)."""

    @property
    def key(self) -> str: ...
    @property
    def netns(self) -> str: ...
    @property
    def ports(self) -> tuple[DeclaredPort, ...]: ...
    @property
    def containers(self) -> tuple[ProcRecord, ...]: ...


def readiness(pods: Iterable[RunningPod], wait: float = READY_WAIT,
              responder: ProcRecord | None = None) -> dict[str, bool]:
    """pod key → ready: every container of the pod runs and every declared TCP/UDP port is bound.

    A pod whose containers run but have not bound yet gets up to `wait` seconds (a kubelet
    readiness probe would likewise hold it back until then). A pod whose every container is
    served by the lab's `responder` is ready while it runs: netlab bound those sockets in the
    pod's namespace itself before handing them over, so its tables are not read."""
    ready: dict[str, bool] = {}
    pending: dict[str, tuple[str, set[tuple[int, str]]]] = {}
    for pod in pods:
        key, running = pod.key, pod.containers
        if not all(procs.alive(rec) for rec in running):
            ready[key] = False
            continue
        want = {(p.port, p.protocol) for p in pod.ports if p.protocol in (Protocol.TCP, Protocol.UDP)}
        if want and not running:
            ready[key] = False   # ports declared, no container recorded to serve them
            continue
        if labresponder.serves(running, responder):
            ready[key] = True
            continue
        pending[key] = (pod.netns, want)
    missing = netns.wait_bound({ns_name: want for ns_name, want in pending.values()}, wait)
    ready.update({key: ns_name not in missing for key, (ns_name, _) in pending.items()})
    return ready


class Programming:
    """Each node's script running in its namespace (`nft -f -`, or `command`), all nodes in
    parallel; `finish` waits for them and raises what any rejected. Started early by `up` (the
    rules as readiness is expected to be) while the pods start, finished when readiness is known."""

    def __init__(self, scripts: Mapping[str, str], command: tuple[str, ...] = (NFT, "-f", "-")) -> None:
        self.scripts = dict(scripts)
        self.tool = command[0]
        self.running: list[tuple[str, subprocess.Popen]] = []
        try:
            for name, script in self.scripts.items():
                # the script in a memory file, not a pipe: nothing blocks here while nft reads it
                script_fd = os.memfd_create(f"kube-proxy-{name}", os.MFD_CLOEXEC)
                try:
                    os.write(script_fd, script.encode())   # a memfd takes the whole write at once
                    os.lseek(script_fd, 0, os.SEEK_SET)
                    proc = procs.popen_in(name, list(command), stdin=script_fd, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True)
                except FileNotFoundError as err:
                    missing = f"the {self.tool} command" if err.filename in (self.tool, None) else f"namespace {name}"
                    raise NetlabError(f"cannot program kube-proxy's rules in {name}: {missing} is not there; "
                                      "run `netlab up` to rebuild the lab") from err
                finally:
                    os.close(script_fd)
                self.running.append((name, proc))
        except BaseException:
            self.kill()
            raise

    def finish(self) -> None:
        failures: list[str] = []
        try:
            for name, proc in self.running:
                _, err = proc.communicate(timeout=NFT_TIMEOUT)
                if proc.returncode != 0:
                    failures.append(f"{name}: {self.tool} exited {proc.returncode}: {' '.join(err.split())[:400]}")
        finally:
            self.kill()
        if failures:
            raise NetlabError(f"{self.tool} rejected kube-proxy's rules (a netlab bug: please report it with the lab "
                              "file) in " + "; ".join(failures))

    def kill(self) -> None:
        for _, proc in self.running:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.running = []


def program(scripts: Mapping[str, str], command: tuple[str, ...] = (NFT, "-f", "-")) -> None:
    """Run each node's script with `nft -f -` (or `command`) inside its namespace: nft for all nodes in
    parallel, iptables-restore one node after the other. Two iptables-restore running at once, each
    in its own node, once left both vCPUs of a Debian 12 (6.1) VM in a soft lockup for minutes; when
    each waited for its input in turn, as before the scripts came from memory files, they never ran
    together."""
    if command[0] == IPTABLES_RESTORE:
        for name, script in scripts.items():
            Programming({name: script}, command).finish()
        return
    Programming(scripts, command).finish()


def program_iptables(scripts: Mapping[str, str]) -> None:
    """iptables mode: each node's filter and nat tables replaced by one `iptables-restore` (atomic per
    table), after the nftables mode's table is gone (a lab switched from nftables mode keeps no trace)."""
    program({name: f"add table ip {NFT_TABLE}\ndelete table ip {NFT_TABLE}\n" for name in scripts})
    program(scripts, (IPTABLES_RESTORE, "-w"))


def clear_iptables(node_netns: list[str]) -> None:
    """nftables mode: remove what iptables mode left in the nodes (a lab switched from it), as kube-proxy's
    CleanupLeftovers does: the built-in chains' jumps into KUBE-* chains, then those chains; nothing else."""
    if shutil.which("iptables-save") is None or shutil.which(IPTABLES_RESTORE) is None:
        return
    scripts = {}
    for ns_name in node_netns:
        proc = procs.popen_in(ns_name, ["iptables-save"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        out, _ = proc.communicate(timeout=NFT_TIMEOUT)
        script = _cleanup(out)
        if script:
            scripts[ns_name] = script
    if scripts:
        program(scripts, (IPTABLES_RESTORE, "-w", "--noflush"))


def _cleanup(saved: str) -> str:
    """An `iptables-restore --noflush` input deleting the KUBE-* chains of `saved` and the jumps into them."""
    lines: list[str] = []
    table, chains, jumps = "", [], []

    def close() -> None:
        if chains:
            lines.extend([f"*{table}", *(f":{c} - [0:0]" for c in chains), *jumps, *(f"-X {c}" for c in chains),
                          "COMMIT"])
    for line in saved.splitlines():
        if line.startswith("*"):
            table, chains, jumps = line[1:], [], []
        elif line.startswith(":KUBE-"):
            chains.append(line[1:].split()[0])
        elif line.startswith("-A ") and not line.split()[1].startswith("KUBE-") and " -j KUBE-" in line:
            jumps.append("-D " + line[3:])
        elif line == "COMMIT":
            close()
            chains = []
    return "\n".join(lines) + "\n" if lines else ""


def flush_udp(node_netns: list[str], stale: list[tuple[str, str, int | None]]) -> None:
    """Delete the conntrack entries of UDP flows to removed endpoints, in every node namespace.

    `stale` holds (service IP, endpoint IP, nodePort or None), as conntrack.CleanStaleEntries
    filters them: original destination the Service IP (or the NodePort), reply source the endpoint."""
    for ns_name in node_netns:
        for service_ip, endpoint_ip, node_port in stale:
            filters = [["--orig-dst", service_ip]] + ([["--orig-port-dst", str(node_port)]] if node_port else [])
            for f in filters:
                # exit 1 with "0 flow entries have been deleted" is the common case: nothing to do
                proc = procs.popen_in(ns_name, [CONNTRACK, "-D", "-p", "udp", *f, "--reply-src", endpoint_ip],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                proc.wait(timeout=NFT_TIMEOUT)
