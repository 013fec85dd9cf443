"""`netlab trace` end to end: read the lab, predict the path, watch one real packet cross it."""
from __future__ import annotations

import os
import re
import selectors
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import NetlabError
from ..kernel import netns, procs, readback
from ..ops.record import LabRecord
from ..ops.targets import Target
from . import capture, pcapng
from .trace import (Flow, Hop, Lab, Probe, WgView, apply_policy, layers, matches, new_probe, parse_kube_proxy, predict,
                    send)

RAW_IP = (12, 101, 228)   # pcap linktypes of bare IP packets (DLT_RAW, LINKTYPE_RAW, LINKTYPE_IPV4)
SETTLE = 1.0   # seconds to wait for the hops' tcpdumps to hand over the probe after it was sent


@dataclass
class TraceResult:
    """`netlab trace`'s outcome: the flow, its hops (each seen or not), the verdict predicted and observed,
    and whether an answer came back."""

    src: Target
    dst: Target
    flow: Flow
    hops: list[Hop]
    predicted: str
    observed: str
    answered: bool

    @property
    def disagreements(self) -> list[str]:
        out = [f"hop {n} ({h.netns} {h.in_ or '-'} -> {h.out or '-'}) was predicted but not seen"
               for n, h in enumerate(self.hops, 1) if not h.observed]
        if self.predicted != self.observed:
            out.append(f"predicted {self.predicted}, observed {self.observed}")
        return out

    def to_json(self) -> dict:
        return {"from": self.src.name, "to": self.dst.name, "protocol": self.flow.protocol, "port": self.flow.port,
                "verdict": self.observed, "hops": [h.to_json() for h in self.hops]}

    def text(self) -> str:
        port = f" port {self.flow.port}" if self.flow.port else ""
        lines = [f"{self.src.name} ({self.flow.src}) -> {self.dst.name} ({self.flow.dst}) {self.flow.protocol}{port}"]
        width = max(len(h.netns) for h in self.hops)
        for n, h in enumerate(self.hops, 1):
            seen = "seen" if h.observed else "NOT SEEN"
            lines.append(f"{n:>2}. {h.netns:<{width}}  {h.in_ or '-':>12} -> {h.out or '-':<12} {h.action:<8} "
                         f"[{seen}]  {h.detail}")
        lines.append(f"verdict: {self.observed} (predicted {self.predicted}"
                     + ("; an answer came back)" if self.answered else ")"))
        lines += [f"disagreement: {d}" for d in self.disagreements]
        return "\n".join(lines)


def read_lab(record: LabRecord) -> Lab:
    views = {}
    for name in record.namespaces:
        try:
            views[name] = readback.read(name)
        except FileNotFoundError:
            raise NetlabError(f"namespace {name} is gone: run `netlab up` again to rebuild lab "
                              f"{record.name!r}") from None
    vpc = record.underlay.netns if record.underlay else ""
    node_ns = {n.name: n.netns for n in record.nodes}
    adjacent: dict[str, set[str]] = {vpc: set(node_ns.values())}
    for ns in node_ns.values():
        adjacent[ns] = {vpc}
    for pod in record.pods:
        adjacent[pod.netns] = {node_ns.get(pod.node, "")}
        adjacent.setdefault(node_ns.get(pod.node, ""), set()).add(pod.netns)
    return Lab(views, readback.route_get, {ns: name for name, ns in node_ns.items()}, adjacent,
               wireguard=_wireguard(record, views))


def _wireguard(record: LabRecord, views) -> dict[str, WgView]:
    """Each node's WireGuard device, as `wg show DEV dump` run as the node gives it (wireguard-go
    answers on the node's own /run/wireguard)."""
    from ..core.backends import wireguard as wg_backend
    from ..kernel import daemons, nodefs, wireguard as wg
    from ..ops import state
    out = {}
    for node in record.nodes:
        view = views.get(node.netns)
        if view is None or view.link(wg_backend.DEVICE) is None:
            continue
        root = nodefs.node_root(state.lab_dir(record.name), node.name)
        done = daemons.run(node.netns, root, node.name, ["wg", "show", wg_backend.DEVICE, "dump"])
        if done.returncode != 0:
            raise NetlabError(f"node {node.name}: `wg show {wg_backend.DEVICE} dump` failed: {done.stderr.strip()}")
        dev = wg.dump(done.stdout)
        peers = []
        for p in dev.peers:
            host, _, port = p.endpoint.rpartition(":") if p.endpoint not in ("", "(none)") else ("", "", "0")
            allowed = tuple(a for a in p.allowed_ips.split(",") if a and a != "(none)")
            peers.append((p.public_key, host, int(port or 0), allowed))
        out[node.netns] = WgView(wg_backend.DEVICE, dev.listen_port, tuple(peers))
    return out


def policy_of(record: LabRecord, src: Target, dst: Target, flow: Flow):
    """The NetworkPolicy answer per (node, side), from the policy engine `policy explain` uses."""
    if not record.policies:
        return None
    from ..core import ipam
    from ..core.policy import evaluate
    from ..model.lab import Protocol
    from ..ops.policy import applied_file
    labfile = applied_file(record).lab
    pod_ips = ipam.allocate(labfile).pod_ips
    pods = {p.key: p for p in labfile.pods}
    ends = [pods.get(t.name) if t.kind == "pod" else t.ip for t in (src, dst)]
    # ICMP has no port: only rules without ports match it, as port 0 matches no rule's port
    proto = Protocol.UDP if flow.protocol == "UDP" else Protocol.TCP
    verdict = evaluate.verdict(labfile, pod_ips, ends[0], ends[1], flow.port or 0, proto)
    reasons = [r.replace(f"on 0/{proto.value}", "for ICMP") for r in verdict.reasons]
    egress = [r for r in reasons if "egress" in r] or reasons[:1]
    ingress = [r for r in reasons if "ingress" in r] or reasons[-1:]
    node = {t.name: p.node for t in (src, dst) for p in record.pods if t.kind == "pod" and p.key == t.name}

    def answer(at: str, side: str):
        if side == "egress" and node.get(src.name) == at:
            return verdict.egress_allowed, "; ".join(egress)
        if side == "ingress" and node.get(dst.name) == at:
            return verdict.ingress_allowed, "; ".join(ingress)
        return None
    return answer


def run(tool: str, src: Target, dst: Target, protocol: str, port: int | None) -> TraceResult:
    record = src.record
    flow = Flow(str(src.ip), str(dst.ip), protocol, port)
    lab = read_lab(record)
    if dst.kind == "service":
        return _run_service(tool, src, dst, flow, lab)
    hops, predicted = predict(lab, flow, src.netns)
    policy = policy_of(record, src, dst, flow)
    if policy is not None:
        hops, predicted = apply_policy(lab, hops, predicted, policy)
    probe = new_probe()
    answered = observe(tool, record.name, lab, hops, flow, probe, src.netns)
    last = hops[-1]
    observed = "delivered" if last.action == "deliver" and last.observed else "dropped"
    return TraceResult(src, dst, flow, hops, predicted, observed, answered)


def _nft_table(ns: str) -> str:
    """kube-proxy's table in a node namespace as `nft list` prints it; empty when there is none."""
    proc = procs.popen_in(ns, ["nft", "list", "table", "ip", "kube-proxy"], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True)
    out, _ = proc.communicate(timeout=30)
    return out if proc.returncode == 0 else ""


_CT_TUPLE = re.compile(r"src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)")


def conntrack_reply(ns: str, flow: Flow, probe: Probe) -> tuple[str, int] | None:
    """The endpoint that answered the probe's connection: the source of conntrack's reply tuple
    for (flow.src:probe.sport -> flow.dst:flow.port) in namespace `ns`."""
    proc = procs.popen_in(ns, ["conntrack", "-L", "-p", flow.protocol.lower(), "-s", flow.src, "-d", flow.dst,
                               "--sport", str(probe.sport), "--dport", str(flow.port)],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out, _ = proc.communicate(timeout=30)
    for line in out.splitlines():
        tuples = _CT_TUPLE.findall(line)
        if len(tuples) >= 2 and tuples[0][:3] == (flow.src, flow.dst, str(probe.sport)):
            return tuples[1][0], int(tuples[1][2])
    return None


def _run_service(tool: str, src: Target, dst: Target, flow: Flow, lab: Lab) -> TraceResult:
    """To a ClusterIP: one predicted path per endpoint kube-proxy's rules may pick (numgen random),
    all watched; the probe's conntrack entry in the namespace that DNAT'd it names the endpoint
    that answered, and that endpoint's path is the trace."""
    record = src.record
    lab.services = {n.netns: parse_kube_proxy(_nft_table(n.netns)) for n in record.nodes}
    key = (flow.dst, flow.protocol.lower(), flow.port or 0)
    endpoints = list(dict.fromkeys(e[0] for table in lab.services.values() if key in table
                                   for e in table[key].endpoints))
    paths: dict[str | None, tuple[list[Hop], str]] = {}
    for endpoint in endpoints or [None]:
        hops, predicted = predict(lab, flow, src.netns, endpoint)
        dnat = next((h for h in hops if h.action == "dnat"), None)
        pod = next((p for p in record.pods if p.ip == endpoint), None)
        if dnat is not None and pod is not None:
            to = Target(record.name, "pod", pod.key, pod.netns, dst.ip, record)
            policy = policy_of(record, src, to, dnat.nat or flow)
            if policy is not None:
                hops, predicted = apply_policy(lab, hops, predicted, policy)
        paths[endpoint] = (hops, predicted)
    probe = new_probe()
    every = [hop for hops, _ in paths.values() for hop in hops]
    answered = observe(tool, record.name, lab, every, flow, probe, src.netns)
    first = next(iter(paths.values()))[0]
    dnat_ns = next((h.netns for h in first if h.action == "dnat"), None)
    reply = conntrack_reply(dnat_ns, flow, probe) if dnat_ns else None
    hops, predicted = paths.get(reply[0] if reply else None, (first, next(iter(paths.values()))[1]))
    for hop in hops:
        if hop.action == "dnat":
            # the DNAT happened as predicted when conntrack's reply comes from this hop's endpoint
            took = reply is not None and hop.nat is not None and reply == (hop.nat.dst, hop.nat.port)
            hop.observed = took and (hop.observed or hop.watch is None)
            hop.detail += (f"; conntrack: reply from {reply[0]}:{reply[1]}" if reply
                           else "; conntrack: no entry for the probe")
    last = hops[-1]
    observed = "delivered" if last.action == "deliver" and last.observed else "dropped"
    return TraceResult(src, dst, flow, hops, predicted, observed, answered)


def observe(tool: str, lab_name: str, lab: Lab, hops: list[Hop], flow: Flow, probe: Probe, src_netns: str) -> bool:
    """One tcpdump per (namespace, interface) of the path; send the probe; mark the hops that saw it."""
    points: dict[tuple[str, str], capture.Point] = {}
    for hop in hops:
        if hop.watch and (hop.netns, hop.watch) not in points:
            points[(hop.netns, hop.watch)] = capture.Point(lab_name, f"trace {hop.netns}", hop.netns, hop.watch)
    vxlan_ports = {link.vxlan["port"] for view in lab.views.values() for link in view.links if link.vxlan}
    vxlan_port = next(iter(vxlan_ports), None)
    running = capture.start(tool, list(points.values()), True, None, ["ip"])
    seen: dict[tuple[str, str], list] = {key: [] for key in points}
    try:
        fd = netns.open_ns(src_netns)
        switch = netns.Switcher()

        @contextmanager
        def inside():
            with switch.inside(fd):
                yield
        try:
            answered = send(inside, flow, probe)
        finally:
            switch.close()
            os.close(fd)
        _collect(running, list(points), seen, vxlan_port, hops, flow, probe)
    finally:
        capture.stop(running)
    for hop in hops:
        if hop.watch:
            # a DNAT hop's interface shows the packet before the translation, or after it when the
            # bridge's netfilter (br_netfilter) ran nat-prerouting as the frame entered the bridge
            heads = {hop.header(flow), hop.nat or flow}
            hop.observed = any(matches(found, head, probe, hop.outer, hop.sealed)
                               for found in seen[(hop.netns, hop.watch)] for head in heads)
    return answered


def _collect(running, keys, seen, vxlan_port, hops, flow, probe) -> None:
    """Read the tcpdumps until every hop has seen the probe, or SETTLE seconds passed."""
    sel = selectors.DefaultSelector()
    for key, cap in zip(keys, running):
        sel.register(cap.proc.stdout, selectors.EVENT_READ, (key, cap))
    deadline = time.monotonic() + SETTLE
    try:
        while time.monotonic() < deadline:
            for sel_key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
                key, cap = sel_key.data
                chunk = os.read(sel_key.fd, 65536)
                if not chunk:
                    sel.unregister(sel_key.fileobj)
                    continue
                cap.buffer += chunk
                for frame in _frames(cap):
                    seen[key].append(layers(frame, vxlan_port))
            if all(any(matches(f, h.header(flow), probe, h.outer, h.sealed) for f in seen[(h.netns, h.watch)])
                   for h in hops if h.watch):
                return
    finally:
        sel.close()


def _frames(cap: capture.Capturing):
    if cap.header is None:
        if len(cap.buffer) < 24:
            return
        cap.header = pcapng.parse_header(bytes(cap.buffer[:24]))
        del cap.buffer[:24]
    while len(cap.buffer) >= 16:
        _, _, caplen, _ = pcapng.parse_record_header(cap.header, bytes(cap.buffer[:16]))
        if len(cap.buffer) < 16 + caplen:
            return
        frame = bytes(cap.buffer[16:16 + caplen])
        if cap.header.linktype in RAW_IP:   # a TUN device (wireguard-go): IP with no link header
            frame = bytes(12) + b"\x08\x00" + frame
        del cap.buffer[:16 + caplen]
        yield frame


def path_steps(result: TraceResult, topo) -> list:
    """The hops as arrows between the picture's boxes: one per change of namespace."""
    from .drawing import PathStep
    box_of = {box.netns: box.id for box in topo.boxes}
    steps = []
    for n, (here, there) in enumerate(zip(result.hops, result.hops[1:]), 1):
        if here.netns != there.netns and here.netns in box_of and there.netns in box_of:
            label = f"{n}. {here.out or here.watch or ''} > {there.in_ or there.watch or ''}"
            steps.append(PathStep(box_of[here.netns], box_of[there.netns], label, here.observed and there.observed))
    return steps
