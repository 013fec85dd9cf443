"""A pod's /etc/resolv.conf, as kubelet composes it and the container runtime writes it. Pure.

kubelet (pkg/kubelet/network/dns/dns.go, GetPodDNS) starts from the resolv.conf it reads on
its node (`--resolv-conf`), then by the pod's dnsPolicy:
- ClusterFirst (and ClusterFirstWithHostNet; netlab's pods never use the host's network, so
  both mean the same): the cluster DNS address as the only nameserver, the search list
  `<ns>.svc.<zone> svc.<zone> <zone>` followed by the node's search domains (duplicates
  dropped, first one kept), and `options ndots:5` instead of the node's options. Without a
  cluster DNS (netlab: `spec.dns.enabled: false`) kubelet warns and falls back to Default.
- Default: the node's nameservers, search domains and options as they are.
- None: nothing from the node; spec.dnsConfig alone.
spec.dnsConfig is then appended (nameservers and searches after the base ones, duplicates
dropped; options merged by name, the pod's value winning), and the result cut to the limits
(3 nameservers; 32 search domains, none longer than 253 characters, 2048 characters in all).
The runtime (containerd's CRI, parseDNSOptions) writes `search`, then one `nameserver` line
each, then `options`; when there is nothing at all to write, it copies the node's file.

kubelet keeps the options in a Go map, so the order of several options is unspecified there;
netlab keeps the order in which they were first given (the node's, then the pod's).
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from ..model.lab import DnsConfig, DnsPolicy

MAX_NAMESERVERS = 3            # validation.MaxDNSNameservers
MAX_SEARCH_PATHS = 32          # validation.MaxDNSSearchPaths
MAX_SEARCH_CHARS = 2048        # validation.MaxDNSSearchListChars (the search line, spaces included)
MAX_SEARCH_NAME = 253          # a longer search domain aborts some resolvers: kubelet drops it
MAX_RESOLV_CONF = 10 << 20     # kubelet reads at most 10 MiB of the node's file
CLUSTER_FIRST_OPTIONS = ("ndots:5",)


@dataclass(frozen=True)
class Resolver:
    """What a resolv.conf says: kubelet's runtimeapi.DNSConfig."""

    nameservers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


def parse(text: str) -> Resolver:
    """kubelet's parseResolvConf: `nameserver` lines accumulate, the last `search` line wins
    (trailing dots dropped, "." left out), `options` accumulate with a later option of the same
    name replacing an earlier one; comments (# at the start of a line) are skipped."""
    nameservers: list[str] = []
    searches: list[str] = []
    options: dict[str, str] = {}
    for line in text[:MAX_RESOLV_CONF].split("\n"):
        trimmed = line.strip()
        if trimmed.startswith("#"):
            continue
        fields = trimmed.split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) >= 2:
            nameservers.append(fields[1])
        elif fields[0] == "search":
            searches = [s.removesuffix(".") for s in fields[1:] if s != "."]
        elif fields[0] == "options":
            for option in fields[1:]:
                options.pop(_option_name(option), None)
                options[_option_name(option)] = option
    return Resolver(tuple(nameservers), tuple(searches), tuple(options.values()))


def render(resolver: Resolver) -> str:
    """The file as containerd writes it (empty when there is nothing to say)."""
    lines = []
    if resolver.searches:
        lines.append("search " + " ".join(resolver.searches))
    lines += [f"nameserver {ns}" for ns in resolver.nameservers]
    if resolver.options:
        lines.append("options " + " ".join(resolver.options))
    return "".join(line + "\n" for line in lines)


def node_resolv_conf(host_text: str) -> str:
    """A lab node's /etc/resolv.conf: the host's search domains and options without its
    nameservers, which a lab cannot reach (its underlay has no way out, and a loopback stub
    such as 127.0.0.53 is the host's, not the node's). With no nameserver a resolver asks
    127.0.0.1 and fails at once instead of waiting for a server that cannot answer."""
    host = parse(host_text)
    return render(Resolver((), host.searches, host.options))


def pod_resolver(policy: DnsPolicy, config: DnsConfig | None, namespace: str, domain: str,
                 cluster_dns: IPv4Address | None, node: Resolver) -> Resolver:
    """kubelet's GetPodDNS for a pod that does not use the host's network."""
    if policy is DnsPolicy.NONE:
        base = Resolver()
    elif policy in (DnsPolicy.CLUSTER_FIRST, DnsPolicy.CLUSTER_FIRST_WITH_HOST_NET) and cluster_dns is not None:
        searches = node.searches
        if domain:
            searches = _unique((f"{namespace}.svc.{domain}", f"svc.{domain}", domain) + node.searches)
        base = Resolver((str(cluster_dns),), searches, CLUSTER_FIRST_OPTIONS)
    else:   # Default, or ClusterFirst with no cluster DNS: the node's
        base = node
    if config is not None:
        base = Resolver(_unique(base.nameservers + config.nameservers), _unique(base.searches + config.searches),
                        _merge_options(base.options, config))
    return Resolver(base.nameservers[:MAX_NAMESERVERS], _fit_searches(base.searches), base.options)


def resolv_conf(policy: DnsPolicy, config: DnsConfig | None, namespace: str, domain: str,
                cluster_dns: IPv4Address | None, host_resolv: str) -> str:
    """The text of the pod's /etc/resolv.conf; `host_resolv` is the node's resolv.conf, the one
    kubelet reads; `cluster_dns` None: the lab runs no cluster DNS."""
    text = render(pod_resolver(policy, config, namespace, domain, cluster_dns, parse(host_resolv)))
    return text or host_resolv


def _option_name(option: str) -> str:
    return option.split(":", 1)[0]


def _unique(items: tuple[str, ...]) -> tuple[str, ...]:
    """omitDuplicates: the first of equal entries kept, in order."""
    return tuple(dict.fromkeys(items))


def _merge_options(base: tuple[str, ...], config: DnsConfig) -> tuple[str, ...]:
    """mergeDNSOptions: by name, the pod's value replacing the base one; an empty value is none."""
    merged: dict[str, str] = {}
    for option in base:
        name, _, value = option.partition(":")
        merged[name] = value
    for entry in config.options:
        merged[entry.name] = entry.value or ""
    return tuple(f"{name}:{value}" if value else name for name, value in merged.items())


def _fit_searches(searches: tuple[str, ...]) -> tuple[str, ...]:
    """formDNSSearchFitsLimits: at most 32 domains, none over 253 characters, then domains cut
    from the end until the line is at most 2048 characters."""
    kept = [s for s in searches[:MAX_SEARCH_PATHS] if len(s) <= MAX_SEARCH_NAME]
    while kept and len(" ".join(kept)) > MAX_SEARCH_CHARS:
        kept.pop()
    return tuple(kept)
