"""NetworkPolicy enforcement: each node namespace gets its compiled table, via `nft -f -`.

The `nft` command, not pyroute2: the compiler (nft.py) writes nft's own language (named
sets, verdict maps, concatenations, intervals), and `nft -f` sends a whole script as one
netlink batch, so a node's table is replaced in a single transaction — no window with
half a ruleset. pyroute2's nftables module only builds raw expressions; we would be
re-implementing nft's compiler. The cost is one fork per node, all nodes in parallel.

Nothing here runs in the root namespace: every nft runs inside a lab node namespace, or
(feature detection) inside a fresh unnamed namespace that vanishes with the process.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from types import MappingProxyType
from typing import Collection, Mapping

from ..core import backends
from . import netns, procs
from .. import names
from ..errors import InputError, KernelFeatureMissing, NetlabError
from ..core.ipam import Allocation
from ..model.lab import LabFile

NFT = "nft"
BRIDGE_NF_SYSCTL = "/proc/sys/net/bridge/bridge-nf-call-iptables"
NFT_TIMEOUT = 30.0

# What node_ruleset() relies on: an inet forward hook, conntrack state, named and
# interval sets, a verdict map, a concatenated set and NFLOG; tried where it cannot matter.
FEATURE_PROBE = """\
table inet netlab_probe {
\tset peers { type ipv4_addr; flags interval; elements = { 10.0.0.0/8 } }
\tchain isolated {
\t\tip daddr . tcp dport { 10.0.0.1 . 80 } return
\t\tip saddr @peers udp dport { 80-90 } accept
\t\tmeta l4proto tcp drop comment "probe"
\t}
\tmap pods { type ipv4_addr : verdict; elements = { 10.0.0.1 : jump isolated } }
\tchain forward {
\t\ttype filter hook forward priority filter; policy accept;
\t\tct state established,related accept
\t\tct state invalid drop
\t\tip saddr vmap @pods
\t}
}
"""


@dataclass(frozen=True)
class Enforced:
    """What a converge left in the kernel: the policies (keys) and a digest of all rules.

    `nft -f` is atomic per node, not per lab: `held` says, per node, the digest of the rules
    in force there after this converge (the new ones where nft succeeded or they were already
    there; the previous ones, when known, where it failed); `failed` says why, per node."""

    policies: tuple[str, ...]
    digest: str
    nodes: int
    held: Mapping[str, str] = field(default_factory=dict)
    failed: Mapping[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.failed


def rulesets(lab: LabFile, pod_ips: Mapping[str, IPv4Address],
             node_netns: Mapping[str, str]) -> dict[str, str]:
    """node namespace name → its nft script, for every node in `node_netns` (node → namespace)."""
    from ..core.policy.nft import node_ruleset   # lazily: the compiler only for labs with policies (start-up time)
    return {ns_name: node_ruleset(lab, pod_ips, node) for node, ns_name in node_netns.items()}


def digest(scripts: Mapping[str, str]) -> str:
    text = "\n".join(f"{name}\n{script}" for name, script in sorted(scripts.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def script_digest(script: str) -> str:
    """One node's rules, as the state records what is in force there."""
    return hashlib.sha256(script.encode()).hexdigest()[:16]


def needed(lab: LabFile, enforced: Collection[str], held: Mapping[str, str] | None = None) -> bool:
    """Rules to write: the lab has policies, or had some (`enforced`, or rules `held` on some
    node after a partial converge) that must now be removed."""
    return bool(lab.policies) or bool(enforced) or bool(held)


def check_enforceable(lab: LabFile) -> None:
    """Policies are enforced in the node namespaces: refuse backends whose pod traffic skips them."""
    problems = backends.check(lab)   # the loader reports these too; a LabFile made otherwise meets them here
    if problems:
        raise InputError(problems)


def check_features(lab: LabFile) -> None:
    """Fail before anything is built when a lab with policies cannot be enforced here."""
    if not lab.policies:
        return
    check_enforceable(lab)
    if shutil.which(NFT) is None:
        raise KernelFeatureMissing(
            f"lab {lab.lab.name!r} has {len(lab.policies)} NetworkPolicies, enforced with nftables, but the "
            "`nft` command is not installed; nothing was created — install nftables (apt-get install "
            "nftables), or remove the NetworkPolicy documents")
    proc = subprocess.run([NFT, "-f", "-"], input=FEATURE_PROBE, capture_output=True, text=True,
                          preexec_fn=netns.child_joining(None), timeout=NFT_TIMEOUT)
    if proc.returncode == 126:
        raise NetlabError("could not create a throwaway network namespace to test nftables "
                          "(unshare(CLONE_NEWNET) failed): run netlab as root")
    if proc.returncode != 0:
        detail = " ".join(proc.stderr.split())[:300]
        raise KernelFeatureMissing(
            f"lab {lab.lab.name!r} has NetworkPolicies, but nftables (nf_tables with conntrack, sets, "
            f"verdict maps and NFLOG) is not usable in a network namespace on this kernel: {detail}; nothing was "
            "created — load nf_tables, nf_conntrack and nfnetlink_log (CONFIG_NF_TABLES, CONFIG_NFT_CT, "
            "CONFIG_NFT_LOG, CONFIG_NETFILTER_NETLINK_LOG), or remove "
            "the NetworkPolicy documents")
    if not _bridge_nf_present():
        raise KernelFeatureMissing(
            f"lab {lab.lab.name!r} has NetworkPolicies, but br_netfilter is not loaded, so same-node "
            "(bridged) pod traffic would bypass them; nothing was created — run `modprobe br_netfilter`")


def _bridge_nf_present() -> bool:
    """br_netfilter registers its sysctls in every namespace; look in a throwaway one."""
    switch = netns.Switcher()
    try:
        with switch.fresh() as fd:
            present = os.path.exists(BRIDGE_NF_SYSCTL)
            os.close(fd)
    finally:
        switch.close()
    return present


def enforce(lab: LabFile, pod_ips: Mapping[str, IPv4Address], node_netns: Mapping[str, str],
            held: Mapping[str, str] | None = None) -> Enforced:
    """Replace the policy table of every node namespace (removed when no pod there is isolated)
    that does not hold its rules yet. `held`: node → digest of the rules in force there, as
    recorded; a node missing from it is rewritten. Never raises for nft refusing a node's
    script: the result says which nodes failed, and the others keep their new rules."""
    held = dict(held or {})
    scripts = rulesets(lab, pod_ips, node_netns)
    node_of = {ns_name: node for node, ns_name in node_netns.items()}
    wanted = {node_of[ns]: script_digest(script) for ns, script in scripts.items()}
    running: list[tuple[str, subprocess.Popen]] = []
    failed: dict[str, str] = {}
    try:
        for name, script in scripts.items():
            node = node_of[name]
            if held.get(node) == wanted[node]:
                continue   # its rules are in force already: nothing to retry there
            try:
                proc = procs.popen_in(name, [NFT, "-f", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
            except FileNotFoundError as err:
                missing = "the nft command" if err.filename in (NFT, None) else f"namespace {name}"
                raise NetlabError(f"cannot enforce NetworkPolicies in {name}: {missing} is not there; "
                                  "run `netlab up` to rebuild the lab") from err
            running.append((name, proc))
        for name, proc in running:
            _, err = proc.communicate(scripts[name], timeout=NFT_TIMEOUT)
            if proc.returncode != 0:
                failed[node_of[name]] = f"nft exited {proc.returncode}: {' '.join(err.split())[:400]}"
    finally:
        for _, proc in running:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    after = {node: (held[node] if node in failed else digest_)
             for node, digest_ in wanted.items() if node not in failed or node in held}
    return Enforced(tuple(p.key for p in lab.policies), digest(scripts), len(scripts),
                    MappingProxyType(after), MappingProxyType(failed))


def converge(lab: LabFile, alloc: Allocation, enforced: Collection[str],
             held: Mapping[str, str] | None = None) -> Enforced | None:
    """The `up`/`apply` stage: rewrite the table of every node that does not hold its rules
    yet; None when there is nothing to do.

    `enforced`: the policies the lab's state records as enforced now; `held`: node → digest
    of the rules the state records in force there (empty: not known, every node is written)."""
    if not needed(lab, enforced, held):
        return None
    node_netns = {name: names.node_netns(lab.lab.name, name) for name in alloc.nodes}
    return enforce(lab, alloc.pod_ips, node_netns, held)


def failure(result: Enforced, before: Collection[str], lab_file: str, command: str) -> str:
    """What to say when nft refused some nodes' rules: which nodes, why, what they still hold."""
    kept = f"the rules of NetworkPolicies {', '.join(before)}" if before else "no NetworkPolicy rules"
    lines = [f"NetworkPolicy rules not applied on {len(result.failed)} of {result.nodes} nodes "
             f"(nft replaces a node's rules in one transaction, so each of these still holds its previous "
             f"rules: {kept}, as before this run):"]
    for node, why in sorted(result.failed.items()):
        lines.append(f"  node {node}: {why}")
    good = sorted(set(result.held) - set(result.failed))
    if good:
        lines.append(f"the new rules are in force on node{'s' if len(good) > 1 else ''} {', '.join(good)}")
    lines.append(f"fix the cause and run `netlab {command} {lab_file}` again: it retries only the nodes "
                 "that are behind (if nft rejected the rules themselves, that is a netlab bug: please "
                 "report it with the lab file)")
    return "\n".join(lines)
