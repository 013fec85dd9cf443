"""Checks across documents: references, duplicates, pins, racks, capacity.

Run after every document is read, even when some had errors, so one run reports them all.
"""
from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address, IPv4Network

from ..core import backends, impairment, ipam, plan
from ..model.checks import DocChecker
from ..errors import Problem
from .collected import Collected
from . import clusterdns, services as workloads
from ..model.lab import (CALICO_IP_ANNOTATION, NAMESPACE_NAME_LABEL, Container, ContainerPort, LabFile, LabSpec,
                         Namespace, Networking, Pod, frozen_map)
from ..model.yamlsrc import join


def _check_impairment_targets(labfile: LabFile, lab_check: DocChecker) -> None:
    for entry in labfile.lab.impairments:
        if impairment.target_netns(labfile, entry.target) is None:
            lab_check.error(f"spec.impairments[{entry.index}].target", f"no node or pod {entry.target!r} (or several pods "
                            "of that name)", "name a node, or a pod as namespace/name")


def cross_check(got: Collected, source: str, problems: list[Problem]) -> LabFile:
    """Checks across documents: references, duplicates, pins, capacity."""
    assert got.lab is not None and got.networking is not None and got.lab_check is not None
    lab, net, lab_check = got.lab, got.networking, got.lab_check
    nodes = {node.name: node for node in lab.nodes}
    if not nodes:
        lab_check.error("spec.nodes", "the lab has no nodes", "list at least one node")
    namespaces: dict[str, Namespace] = {}
    for ns in got.namespaces:
        if ns.name in namespaces:
            problems.append(Problem(source, None, f"Namespace({ns.name})", "duplicate namespace"))
        namespaces[ns.name] = ns
    networking_ok = net.pod_subnet.prefixlen <= ipam.NODE_MASK   # else a placeholder after an error
    if networking_ok:
        _check_underlay(lab, net, lab_check)
        _check_pinned_cidrs(lab, net, lab_check)
    _check_racks(lab, got, lab_check)
    pods: list[Pod] = []
    seen: set[str] = set()
    order = list(nodes)
    if lab.dns_enabled:
        clusterdns.inject(got, net, lab_check)
    got.pods += workloads.expand_deployments(got, lab)
    for i, (pod, check) in enumerate(got.pods):
        if pod.key in seen:
            check.error("metadata.name", f"duplicate pod {pod.key}", "pod names must be unique in a namespace")
            continue
        seen.add(pod.key)
        node = pod.node
        if not node:
            node = order[len(pods) % len(order)] if order else ""  # netlab's scheduler: round robin
        elif node not in nodes:
            check.error("spec.nodeName", f"unknown node {node!r}",
                        "use one of: " + ", ".join(order) if order else "declare the node in the Lab")
            continue
        if pod.namespace not in namespaces:
            namespaces[pod.namespace] = Namespace(pod.namespace, frozen_map({NAMESPACE_NAME_LABEL: pod.namespace}))
        pods.append(dataclasses.replace(pod, node=node))
    if got.scale:
        count, per_node = got.scale["nodes"], got.scale["podsPerNode"]
        ns_name = got.scale["namespace"]
        ports = tuple(ContainerPort(p) for p in got.scale["ports"])
        containers = (Container("responder", (), ports),) if ports else ()
        namespaces.setdefault(ns_name, Namespace(ns_name, frozen_map({NAMESPACE_NAME_LABEL: ns_name})))
        for n in range(1, count + 1):
            for j in range(1, per_node + 1):
                if f"{ns_name}/node-{n}-p{j}" in seen:
                    lab_check.error("spec.scale", f"generated pod {ns_name}/node-{n}-p{j} clashes with a listed pod",
                                    "rename the listed pod")
                    continue
                pods.append(Pod(f"node-{n}-p{j}", ns_name, f"node-{n}",
                                frozen_map({"app": "scale", "node": f"node-{n}"}), containers))
    if got.dns is not None:
        namespaces.setdefault(clusterdns.NAMESPACE, Namespace(clusterdns.NAMESPACE,
                                                              frozen_map({NAMESPACE_NAME_LABEL: clusterdns.NAMESPACE})))
        for pod in workloads.expand(got.dns[0], order, seen):
            got.pods.append((pod, got.dns[1]))
            pods.append(pod)
    if "default" not in namespaces:
        namespaces["default"] = Namespace("default", frozen_map({NAMESPACE_NAME_LABEL: "default"}))
    services = workloads.with_kubernetes_service(got)
    for svc in services:
        namespaces.setdefault(svc.namespace, Namespace(svc.namespace, frozen_map({NAMESPACE_NAME_LABEL: svc.namespace})))
    labfile = LabFile(source, net, lab, tuple(namespaces.values()), tuple(pods), tuple(p for p, _ in got.policies),
                      services)
    workloads.check_services(labfile, got, lab_check)
    _check_impairment_targets(labfile, lab_check)
    problems += backends.check(labfile)
    if problems or not networking_ok:
        return labfile
    _check_pinned_ips(labfile, got, problems)
    if problems:
        return labfile
    _check_interface_names(labfile, got)
    try:
        alloc = ipam.allocate(labfile)
    except ipam.AllocationError as err:
        checks = {pod.key: check for pod, check in got.pods}
        if err.kind == "pod" and err.subject in checks:
            checks[err.subject].error("spec.nodeName", err.message, err.hint)
        elif err.kind == "node":
            lab_check.error(got.node_paths.get(err.subject, "spec.nodes"), err.message, err.hint)
        else:
            lab_check.error("spec", err.message, err.hint)
        return labfile
    if not problems:   # the veth-hash clash above says it better
        _check_planned_interfaces(labfile, alloc, got)
    return labfile


def _check_planned_interfaces(lab: LabFile, alloc: ipam.Allocation, got: Collected) -> None:
    """Every interface name of the plan, as the kernel will see it (length, one per namespace)."""
    assert got.lab_check is not None
    checks = {pod.key: check for pod, check in got.pods}
    for ns, message in plan.interface_problems(plan.build(lab, alloc)):
        if ns.role is plan.Role.POD and ns.subject in checks:
            checks[ns.subject].error("metadata.name", message, "shorten or rename it")
        elif ns.role is plan.Role.NODE:
            got.lab_check.error(got.node_paths.get(ns.subject, "spec.nodes"), message,
                                "shorter names (nodes, racks), a smaller vni, and no node named after an "
                                "interface (lo, vpc0, eth0)")
        else:
            got.lab_check.error("spec.nodes", message, "racks whose names differ in their first 11 characters, "
                                "and no node named lo or vpc0")


def _check_interface_names(lab: LabFile, got: Collected) -> None:
    """Host-side veth names are hashes (as the bridge plugin's): refuse the rare clash on one node."""
    checks = {pod.key: check for pod, check in got.pods}
    seen: dict[tuple[str, str], str] = {}
    for pod in lab.pods:
        ifname = plan.pod_host_veth(lab.lab.name, pod)
        other = seen.setdefault((pod.node, ifname), pod.key)
        if other != pod.key and pod.key in checks:
            checks[pod.key].error("metadata.name", f"pods {other} and {pod.key} on node {pod.node!r} hash to "
                                  f"the same interface name {ifname}", "rename one of them")


def _check_underlay(lab: LabSpec, net: Networking, check: DocChecker) -> None:
    for what, other in (("podSubnet", net.pod_subnet), ("serviceSubnet", net.service_subnet)):
        if lab.underlay_subnet.overlaps(other):
            check.error("spec.underlay.subnet", f"underlay subnet {lab.underlay_subnet} overlaps {what} {other}",
                        "choose an underlay subnet apart from the cluster's subnets")



def _check_racks(lab: LabSpec, got: Collected, check: DocChecker) -> None:
    """Refuse, before anything is built, a backend that cannot cross the VPC router between racks."""
    l2 = backends.kind(lab.backend).l2
    if l2 is None or not lab.nodes:
        return
    rack_of = {node.name: node.rack or ipam.DEFAULT_RACK for node in lab.nodes}
    first = lab.nodes[0]
    other = next((n for n in lab.nodes if rack_of[n.name] != rack_of[first.name]), None)
    if other is None:
        return
    need, hint = l2.need, l2.hint
    node_path = got.node_paths.get(other.name, "spec.nodes")
    check.error(f"{node_path}.rack" if other.rack else node_path,
                f"{need}: nodes {first.name} and {other.name} are in different racks "
                f"({rack_of[first.name]}, {rack_of[other.name]})", hint)


def _check_pinned_cidrs(lab: LabSpec, net: Networking, check: DocChecker) -> None:
    seen: dict[IPv4Network, str] = {}
    for i, node in enumerate(lab.nodes):
        cidr = node.pod_cidr
        if cidr is None:
            continue
        path = f"spec.nodes[{i}].podCIDR"
        if cidr.prefixlen != ipam.NODE_MASK:
            check.error(path, f"podCIDR {cidr} is not a /{ipam.NODE_MASK}", "node CIDRs are /24s of podSubnet")
        elif not cidr.subnet_of(net.pod_subnet):
            check.error(path, f"podCIDR {cidr} is outside podSubnet {net.pod_subnet}",
                        "pin a /24 inside podSubnet")
        elif cidr.overlaps(net.service_subnet):
            check.error(path, f"podCIDR {cidr} overlaps serviceSubnet {net.service_subnet}",
                        "pin a /24 apart from serviceSubnet")
        elif cidr in seen:
            check.error(path, f"podCIDR {cidr} is already pinned to node {seen[cidr]!r}",
                        "each node needs its own /24")
        else:
            seen[cidr] = node.name


def _check_pinned_ips(lab: LabFile, got: Collected, problems: list[Problem]) -> None:
    checks = {pod.key: check for pod, check in got.pods}
    path = join("metadata.annotations", CALICO_IP_ANNOTATION)
    try:
        cidrs = ipam.allocate_node_cidrs(lab)
    except ipam.AllocationError:
        return  # reported by the full allocation
    owners: dict[IPv4Address, str] = {}
    for pod in lab.pods:
        ip = pod.pinned_ip
        if ip is None:
            continue
        cidr = cidrs[pod.node]
        check = checks[pod.key]
        if ip not in cidr:
            check.error(path, f"pinned IP {ip} is outside {cidr}, the CIDR of node {pod.node!r}",
                        f"pick an address in {cidr}, or pin the node's podCIDR")
        elif ip in (cidr.network_address, cidr.network_address + 1, cidr.broadcast_address):
            check.error(path, f"pinned IP {ip} is reserved in {cidr}",
                        "the network address, the gateway (.1) and broadcast are taken")
        elif ip in owners:
            check.error(path, f"pinned IP {ip} is already pinned to pod {owners[ip]}", "pod IPs must be unique")
        else:
            owners[ip] = pod.key
