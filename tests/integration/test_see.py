"""`netlab graph` and `netlab capture` on real labs: the picture from the kernel, packets on the wire."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netlab.kernel import netns, procs
from netlab.ops import state
from netlab.ops.record import PodRecord
from tests.support.kernel import ip, netlab, pings
from tests.support.labs import lab_name, lab_yaml, pod_yaml
from tests.support.pictures import check_mermaid, dot_to_svg, svg_texts

pytestmark = pytest.mark.root

DEFAULT_LAB = (Path(__file__).parents[2] / "netlab" / "data" / "default.yaml").read_text()
DB_ONLY_FROM_WEB = """
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-web, namespace: default}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: web}}}]}]
"""
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz (Debian graphviz) is not installed")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The default lab under a run-unique name, plus a policy: db accepts only web."""
    from netlab.ops import lab as lab_ops
    from netlab.spec import loader
    name = lab_name("see")
    path = tmp_path_factory.mktemp("see") / "lab.yaml"
    path.write_text(DEFAULT_LAB.replace("name: demo", f"name: {name}") + DB_ONLY_FROM_WEB)
    lab_ops.up(loader.load_file(str(path)))
    try:
        yield name
    finally:
        lab_ops.down(name)


def graph(name: str, *args: str) -> str:
    return netlab("graph", "--name", name, *args, check=True).stdout


def test_graph_json_is_read_from_the_kernel(demo):
    data = json.loads(graph(demo, "--format", "json"))
    record = state.load(demo)
    boxes = {b["id"]: b for b in data["boxes"]}
    assert {f"pod:default/{p}" for p in ("web", "cache", "db", "api")} <= set(boxes)
    node1 = {i["name"]: i for i in boxes["node:node-1"]["ifaces"]}
    assert set(node1) == {"eth0", "cni0", "flannel.1"}
    assert node1["flannel.1"]["extra"] == "VNI 1 udp/8472 local 10.250.0.10"
    # each pod's link is drawn to the bridge its veth peer is a port of, named as iproute2 names it
    host_veths = {link["ifname"]: link.get("master") for link in ip(f"{demo}.node-1", "link", "show", "type", "veth")}
    for pod in ("web", "cache"):
        (edge,) = [e for e in data["edges"] if e["src"] == f"pod:default/{pod}"]
        assert host_veths[edge["label"]] == "cni0" == edge["dst_if"]
    vxlan = [e for e in data["edges"] if e["kind"] == "vxlan"]
    assert {(e["src"], e["dst"]) for e in vxlan} == {("node:node-1", "node:node-2"), ("node:node-2", "node:node-1")}
    assert any("VXLAN VNI 1 to 10.250.0.11:8472" in e["label"] for e in vxlan)
    (policy,) = [n for n in data["notes"] if n["kind"] == "NetworkPolicy"]
    assert policy["title"] == "default/db-from-web" and policy["attach"] == ["pod:default/db"]
    assert {p.ip for p in record.pods} == {boxes[f"pod:{p.namespace}/{p.name}"]["ip"] for p in record.pods}
    assert sum(p.namespace == "kube-system" for p in record.pods) == 2   # the cluster DNS pods are drawn too


@needs_dot
def test_graph_dot_parses_and_svg_is_well_formed_with_every_pod(demo, tmp_path):
    dot_text = graph(demo, "--format", "dot")
    assert "subgraph cluster_node_0" in dot_text
    svg_from_dot = svg_texts(dot_to_svg(dot_text))
    out = tmp_path / "lab.svg"
    graph(demo, "-o", str(out))           # format from the suffix
    texts = " ".join(svg_texts(out.read_text()))
    assert " ".join(svg_from_dot) == texts
    for pod in state.load(demo).pods:
        assert re.search(rf"\b{pod.name}\b", texts) and pod.ip in texts
    assert "NetworkPolicy default/db-from-web" in texts
    png = tmp_path / "lab.png"
    graph(demo, "--format", "png", "-o", str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_graph_mermaid_is_well_formed_with_every_pod(demo):
    nodes, edges = check_mermaid(graph(demo, "--format", "mermaid"))
    labels = " ".join(nodes.values())
    for pod in state.load(demo).pods:
        assert f"<b>{pod.name}</b>" in labels and pod.ip in labels
    assert ("n_pod_default_web", "n_node_node_1") in edges


def test_graph_without_graphviz_names_the_package_and_does_nothing(demo, tmp_path):
    out = tmp_path / "lab.svg"
    proc = netlab_with_path(str(tmp_path), "graph", "--name", demo, "-o", str(out))
    assert proc.returncode == 1 and "graphviz" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
    assert netlab_with_path(str(tmp_path), "graph", "--name", demo, "--format", "dot").returncode == 0


def netlab_with_path(path: str, *args: str):
    """netlab with PATH holding no Graphviz (the interpreter is started by its full path)."""
    old = os.environ["PATH"]
    os.environ["PATH"] = path
    try:
        return netlab(*args)
    finally:
        os.environ["PATH"] = old


# -- capture -----------------------------------------------------------------------------
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark (Debian tshark) is not installed")


class Capture:
    """`netlab capture ...` running in the background, returned once tcpdump is listening."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "netlab", "capture", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.said = b""
        while b"capturing on" not in self.said:
            line = self.proc.stderr.readline()
            if not line:
                raise AssertionError(f"netlab capture exited {self.proc.wait()}: {self.said.decode()}")
            self.said += line

    def finish(self, timeout: float = 30) -> tuple[int, bytes, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, (self.said + err).decode()


def tshark(path: Path, *fields: str, decode: tuple[str, ...] = ()) -> list[list[str]]:
    argv = ["tshark", "-r", str(path), *sum((["-d", d] for d in decode), []), "-T", "fields"]
    for f in fields:
        argv += ["-e", f]
    proc = subprocess.run(argv, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return [line.split("\t") for line in proc.stdout.splitlines()]


def pod(name: str, pod_name: str) -> PodRecord:
    return next(p for p in state.load(name).pods if p.name == pod_name)


@needs_tshark
def test_capture_in_one_pod_writes_the_ping_as_pcap(demo, tmp_path):
    out = tmp_path / "web.pcap"
    cap = Capture("--name", demo, "web", "-c", "2", "-w", str(out), "icmp")
    assert pings(pod(demo, "web").netns, pod(demo, "db").ip)
    code, _, said = cap.finish()
    assert code == 0, said
    assert out.read_bytes()[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4")   # pcap, as tcpdump wrote it
    web, db = pod(demo, "web").ip, pod(demo, "db").ip
    assert tshark(out, "ip.src", "ip.dst", "icmp.type") == [[web, db, "8"], [db, web, "0"]]


@needs_tshark
def test_capture_on_both_ends_and_the_underlay_is_one_pcapng_with_named_interfaces(demo, tmp_path):
    out = tmp_path / "flow.pcapng"
    # one ping: request and reply in each pod, and in the VPC each VXLAN packet on two bridge ports
    cap = Capture("--name", demo, "web,db", "vpc", "-c", "8", "-w", str(out), "icmp or udp port 8472")
    assert pings(pod(demo, "web").netns, pod(demo, "db").ip)
    code, _, said = cap.finish()
    assert code == 0, said
    rows = tshark(out, "frame.interface_name", "frame.interface_description", "ip.src", "ip.dst", "udp.dstport",
                  "vxlan.vni", "icmp.type", decode=("udp.port==8472,vxlan",))
    by_iface: dict[str, list[list[str]]] = {}
    for row in rows:
        by_iface.setdefault(row[0], []).append(row)
    assert set(by_iface) == {"default/web:eth0", "default/db:eth0", "vpc:any"}
    assert {r[1] for r in by_iface["default/web:eth0"]} == {f"netns {demo}.default.web"}
    web, db = pod(demo, "web").ip, pod(demo, "db").ip
    for end in ("default/web:eth0", "default/db:eth0"):
        assert sorted((r[2], r[3], r[6]) for r in by_iface[end]) == sorted([(web, db, "8"), (db, web, "0")])
    underlay = {n.name: n.underlay_ip for n in state.load(demo).nodes}
    outer = sorted((r[2].split(",")[0], r[3].split(",")[0], r[4], r[5]) for r in by_iface["vpc:any"])
    there = (underlay["node-1"], underlay["node-2"], "8472", "1")
    back = (underlay["node-2"], underlay["node-1"], "8472", "1")
    assert outer == sorted([there, there, back, back])
    stamps = [float(r[0]) for r in tshark(out, "frame.time_epoch")]
    assert stamps == sorted(stamps)   # merged in time order, as mergecap would


def test_capture_names_a_wrong_interface_or_filter_and_a_missing_tcpdump(demo, tmp_path):
    proc = netlab("capture", "--name", demo, "web:flannel.1", "-c", "1")
    assert proc.returncode == 2 and "default/web has no interface 'flannel.1'" in proc.stderr
    assert "eth0" in proc.stderr
    proc = netlab("capture", "--name", demo, "web", "-c", "1", "-w", str(tmp_path / "x"), "icmp", "and", "(")
    assert proc.returncode == 2 and "FILTER" in proc.stderr and "Traceback" not in proc.stderr
    for command in (("capture", "--name", demo, "web", "-c", "1"), ("trace", "--name", demo, "web", "db")):
        proc = netlab_with_path(str(tmp_path), *command)
        assert proc.returncode == 1 and "apt-get install --no-install-recommends tcpdump" in proc.stderr
    proc = netlab("trace", "--name", demo, "web", "db", "--protocol", "udp")
    assert proc.returncode == 2 and "needs --port" in proc.stderr


def tcpdumps_of(lab: str) -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and procs.carries_marker(int(e), lab)
            and procs.start_time(int(e)) is not None and open(f"/proc/{e}/comm").read().strip() == "tcpdump"]


def wait_for(predicate, what: str, limit: float = 20.0) -> None:
    """Wait for an event (not a timing claim): fail only if it never comes."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


def test_capture_processes_are_owned_die_with_netlab_and_down_stops_them(make_lab):
    name = lab_name("cap")
    make_lab(lab_yaml(name, nodes=1, pods=pod_yaml("a", "node-1")))
    cap = Capture("--name", name, "a", "node-1")
    (pid, other) = sorted(tcpdumps_of(name))   # found by the lab's marker, as containers are
    inodes = {netns.inode(f"{name}.default.a"), netns.inode(f"{name}.node-1")}
    assert {os.stat(f"/proc/{p}/ns/net").st_ino for p in (pid, other)} == inodes
    cap.proc.send_signal(signal.SIGKILL)      # netlab dies: its tcpdumps go with it
    cap.proc.wait()
    wait_for(lambda: not tcpdumps_of(name), "tcpdump exits after netlab was killed")
    cap = Capture("--name", name, "a")
    assert len(tcpdumps_of(name)) == 1
    result = netlab("down", "--name", name, check=True)
    assert "stopped 2 processes" in result.stderr + result.stdout   # the container and the capture
    code, _, said = cap.finish()
    assert not tcpdumps_of(name) and code == 0, said


# -- trace -------------------------------------------------------------------------------
def trace(name: str, *args: str) -> dict:
    proc = netlab("trace", "--name", name, *args, "--json")
    data = json.loads(proc.stdout)
    assert set(data) == {"from", "to", "protocol", "port", "verdict", "hops"}
    assert all(set(h) == {"netns", "in", "out", "action", "detail", "observed"} for h in data["hops"])
    return data


def host_veth(name: str, node: str, pod_name: str) -> str:
    """The node-side veth of a pod, as iproute2 shows it: the peer of the pod's eth0."""
    (eth0,) = ip(pod(name, pod_name).netns, "link", "show", "eth0")
    (veth,) = [link for link in ip(f"{name}.{node}", "link", "show", "type", "veth")
               if link["ifindex"] == eth0["link_index"]]
    return veth["ifname"]


def path(data: dict) -> list[tuple]:
    return [(h["netns"], h["in"], h["out"], h["action"]) for h in data["hops"]]


def test_trace_web_db_crosses_vxlan_and_every_hop_is_seen(demo):
    data = trace(demo, "web", "db")
    n1, n2 = f"{demo}.node-1", f"{demo}.node-2"
    assert path(data) == [
        (f"{demo}.default.web", None, "eth0", "route"),
        (n1, host_veth(demo, "node-1", "web"), "cni0", "bridge"),
        (n1, "cni0", "flannel.1", "route"),
        (n1, "flannel.1", "eth0", "encap"),
        (f"{demo}.vpc", "node-1", "node-2", "bridge"),
        (n2, "eth0", "flannel.1", "decap"),
        (n2, "flannel.1", "cni0", "route"),
        (n2, "cni0", host_veth(demo, "node-2", "db"), "bridge"),
        (f"{demo}.default.db", "eth0", None, "deliver")]
    assert "VXLAN VNI 1 10.250.0.10 > 10.250.0.11 udp/8472" in data["hops"][3]["detail"]
    assert data["hops"][2]["detail"].startswith("172.16.1.2 via 172.16.1.0 dev flannel.1")
    assert [h["observed"] for h in data["hops"]] == [True] * 9
    assert (data["from"], data["to"], data["protocol"], data["port"], data["verdict"]) == \
        ("default/web", "default/db", "ICMP", None, "delivered")


def test_trace_same_node_is_bridged_on_cni0(demo):
    data = trace(demo, "web", "cache", "--port", "6379")
    assert path(data) == [(f"{demo}.default.web", None, "eth0", "route"),
                          (f"{demo}.node-1", host_veth(demo, "node-1", "web"), host_veth(demo, "node-1", "cache"),
                           "bridge"),
                          (f"{demo}.default.cache", "eth0", None, "deliver")]
    assert all(h["observed"] for h in data["hops"]) and data["verdict"] == "delivered"
    assert data["protocol"] == "TCP" and data["port"] == 6379


def test_trace_a_policy_drop_names_the_policy_as_policy_explain_does(demo):
    data = trace(demo, "cache", "db", "--port", "5432")
    last = data["hops"][-1]
    assert (last["netns"], last["in"], last["action"], data["verdict"]) == \
        (f"{demo}.node-2", "flannel.1", "drop", "dropped")
    explained = netlab("policy", "explain", "--name", demo, "cache", "db", "5432/tcp", check=True).stdout
    assert "denied" in explained.splitlines()[0]
    reasons = [line.strip()[2:] for line in explained.splitlines()[1:] if "ingress" in line]
    assert reasons and all(r in last["detail"] for r in reasons)
    assert "default/db-from-web" in last["detail"]
    assert all(h["observed"] for h in data["hops"])   # seen up to where it was dropped


def topology_lab(stem: str) -> str:
    text = (Path(__file__).parents[2] / "topologies" / f"{stem}.yaml").read_text()
    return re.sub(r"(kind: Lab\nmetadata:\n  name: )\S+", lambda m: m.group(1) + lab_name(stem[:6]), text)


def test_trace_host_gw_routes_via_the_other_nodes_underlay_ip(make_lab):
    labfile, _, _ = make_lab(topology_lab("flannel-host-gw"))
    name = labfile.lab.name
    data = trace(name, "web", "db")
    n1, n2 = f"{name}.node-1", f"{name}.node-2"
    assert path(data) == [(f"{name}.default.web", None, "eth0", "route"),
                          (n1, host_veth(name, "node-1", "web"), "cni0", "bridge"),
                          (n1, "cni0", "eth0", "route"),
                          (f"{name}.vpc", "node-1", "node-2", "bridge"),
                          (n2, "eth0", "cni0", "route"),
                          (n2, "cni0", host_veth(name, "node-2", "db"), "bridge"),
                          (f"{name}.default.db", "eth0", None, "deliver")]
    assert data["hops"][2]["detail"] == "172.16.1.2 via 10.250.0.11 dev eth0"
    assert all(h["observed"] for h in data["hops"]) and data["verdict"] == "delivered"


def test_trace_macvlan_leaves_by_the_parent_and_arrives_at_the_child(make_lab):
    labfile, _, _ = make_lab(topology_lab("macvlan"))
    name = labfile.lab.name
    data = trace(name, "a1", "b1")
    assert path(data) == [(f"{name}.default.a1", None, "eth0", "route"),
                          (f"{name}.node-1", None, "eth0", "macvlan"),
                          (f"{name}.vpc", "node-1", "node-2", "bridge"),
                          (f"{name}.node-2", "eth0", None, "macvlan"),
                          (f"{name}.default.b1", "eth0", None, "deliver")]
    assert all(h["observed"] for h in data["hops"]) and data["verdict"] == "delivered"


needs_bird = pytest.mark.skipif(shutil.which("bird") is None, reason="bird (Debian package bird2) is not installed")


def bgp_converged(name: str) -> None:
    from netlab.tools import bgp
    deadline = time.monotonic() + 60.0   # not a timing assertion: how long before calling it a failure
    while not bgp.converged(state.load(name)):
        if time.monotonic() > deadline:
            pytest.fail(f"lab {name}: BGP did not converge: {bgp.lab_sessions(state.load(name))}")
        time.sleep(0.2)


@needs_bird
def test_trace_bgp_mesh_is_a_plain_routed_hop_via_the_peers_underlay_ip(make_lab):
    labfile, _, _ = make_lab(topology_lab("bgp-mesh"))
    name = labfile.lab.name
    bgp_converged(name)
    data = trace(name, "a", "b")
    n1, n2 = f"{name}.node-1", f"{name}.node-2"
    assert path(data) == [(f"{name}.default.a", None, "eth0", "route"),
                          (n1, host_veth(name, "node-1", "a"), "cni0", "bridge"),
                          (n1, "cni0", "eth0", "route"),
                          (f"{name}.vpc", "node-1", "node-2", "bridge"),
                          (n2, "eth0", "cni0", "route"),
                          (n2, "cni0", host_veth(name, "node-2", "b"), "bridge"),
                          (f"{name}.default.b", "eth0", None, "deliver")]
    # the route BIRD installed (proto bird): the other node's block via its underlay IP
    assert data["hops"][2]["detail"] == "172.16.1.2 via 10.250.0.11 dev eth0"
    assert all(h["observed"] for h in data["hops"]) and data["verdict"] == "delivered"


@needs_bird
def test_trace_bgp_racks_crosses_the_vpc_router_between_racks(make_lab):
    labfile, _, _ = make_lab(topology_lab("bgp-racks"))
    name = labfile.lab.name
    bgp_converged(name)
    data = trace(name, "a", "c")
    n1, n3, vpc = f"{name}.node-1", f"{name}.node-3", f"{name}.vpc"
    assert path(data) == [(f"{name}.default.a", None, "eth0", "route"),
                          (n1, host_veth(name, "node-1", "a"), "cni0", "bridge"),
                          (n1, "cni0", "eth0", "route"),
                          (vpc, "node-1", "vpc0", "bridge"),
                          (vpc, "vpc0", "vpc-r2", "route"),
                          (vpc, "vpc-r2", "node-3", "bridge"),
                          (n3, "eth0", "cni0", "route"),
                          (n3, "cni0", host_veth(name, "node-3", "c"), "bridge"),
                          (f"{name}.default.c", "eth0", None, "deliver")]
    # node-1 learned c's block from the router (eBGP), the router from node-3
    assert data["hops"][2]["detail"] == "172.16.2.2 via 10.250.0.1 dev eth0"
    assert data["hops"][4]["detail"] == f"172.16.2.2 via {underlay(name, 'node-3')} dev vpc-r2"
    assert all(h["observed"] for h in data["hops"]) and data["verdict"] == "delivered"


def wireguard_missing() -> str | None:
    from netlab.kernel import wireguard as wg
    from tests.integration.test_wireguard import IMPL
    return None if isinstance(IMPL, wg.Implementation) else str(IMPL)


@pytest.mark.skipif(wireguard_missing() is not None, reason=str(wireguard_missing()))
def test_trace_wireguard_encapsulates_to_the_peers_endpoint_from_wg_show(make_lab):
    labfile, _, _ = make_lab(topology_lab("wireguard"))
    name = labfile.lab.name
    data = trace(name, "web", "db")
    n1, n2 = f"{name}.node-1", f"{name}.node-2"
    assert path(data) == [(f"{name}.default.web", None, "eth0", "route"),
                          (n1, host_veth(name, "node-1", "web"), "cni0", "bridge"),
                          (n1, "cni0", "flannel-wg", "route"),
                          (n1, "flannel-wg", "eth0", "encap"),
                          (f"{name}.vpc", "node-1", "node-2", "bridge"),
                          (n2, "eth0", "flannel-wg", "decap"),
                          (n2, "flannel-wg", "cni0", "route"),
                          (n2, "cni0", host_veth(name, "node-2", "db"), "bridge"),
                          (f"{name}.default.db", "eth0", None, "deliver")]
    # the peer is the one `wg show` lists with db's block in its AllowedIPs
    (dump,) = [line.split("\t") for line in netlab("exec", "--name", name, "node-1", "--", "wg", "show", "flannel-wg",
                                                     "dump", check=True).stdout.splitlines()[1:]
               if "172.16.1.0/24" in line]
    encap = data["hops"][3]["detail"]
    assert f"WireGuard peer {dump[0][:8]}... allowed-ips 172.16.1.0/24 endpoint {dump[2]}:" in encap
    assert f"{underlay(name, 'node-1')} > {underlay(name, 'node-2')} udp/51820" in encap
    assert all(h["observed"] for h in data["hops"]) and data["verdict"] == "delivered"


def underlay(name: str, node: str) -> str:
    return next(n.underlay_ip for n in state.load(name).nodes if n.name == node)


@pytest.fixture(scope="module")
def services_lab(tmp_path_factory):
    """topologies/services.yaml under a run-unique name."""
    from netlab.ops import lab as lab_ops
    from netlab.spec import loader
    path = tmp_path_factory.mktemp("svc") / "lab.yaml"
    path.write_text(topology_lab("services"))
    labfile = loader.load_file(str(path))
    lab_ops.up(labfile)
    try:
        yield labfile.lab.name
    finally:
        lab_ops.down(labfile.lab.name)


def test_trace_to_a_service_shows_the_dnat_to_the_endpoint_that_answered(services_lab):
    name = services_lab
    record = state.load(name)
    web = next(s for s in record.services if s.key == "default/web")
    client = pod(name, "client")
    n1, n2 = f"{name}.node-1", f"{name}.node-2"
    pods_by_ip = {p.ip: p for p in record.pods}
    for dst, args in (("default/web", ("--port", "80")), (f"{web.cluster_ip}:80", ()),
                      ("svc/default/web", ("--port", "80"))):
        data = trace(name, "client", dst, *args)
        assert (data["to"], data["protocol"], data["port"]) == ("svc/default/web", "TCP", 80)
        (dnat,) = [h for h in data["hops"] if h["action"] == "dnat"]
        endpoint = re.search(r"dnat to (\S+):8080;", dnat["detail"]).group(1)
        # the endpoint conntrack says answered is the one the DNAT names, one of the Service's
        assert f"conntrack: reply from {endpoint}:8080" in dnat["detail"]
        assert endpoint in {e.ip for e in web.endpoints}
        target = pods_by_ip[endpoint]
        head = [(client.netns, None, "eth0", "route"), (n1, host_veth(name, "node-1", "client"), "cni0", "bridge"),
                (n1, "cni0", None, "dnat")]
        if target.node == "node-1":
            tail = [(n1, "cni0", "cni0", "route"), (n1, "cni0", host_veth(name, "node-1", target.name), "bridge")]
        else:
            tail = [(n1, "cni0", "flannel.1", "route"), (n1, "flannel.1", "eth0", "encap"),
                    (f"{name}.vpc", "node-1", "node-2", "bridge"), (n2, "eth0", "flannel.1", "decap"),
                    (n2, "flannel.1", "cni0", "route"), (n2, "cni0", host_veth(name, "node-2", target.name), "bridge")]
        assert path(data) == head + tail + [(target.netns, "eth0", None, "deliver")]
        assert data["hops"][3]["detail"].startswith(f"{endpoint} ")   # routed by its translated address
        assert all(h["observed"] for h in data["hops"]) and data["verdict"] == "delivered"
    udp = trace(name, "client", "default/web", "--protocol", "udp")
    (dnat,) = [h for h in udp["hops"] if h["action"] == "dnat"]
    assert (udp["protocol"], udp["port"]) == ("UDP", 53) and ":5353; now 172.16.0.2 > " in dnat["detail"]
    assert all(h["observed"] for h in udp["hops"]) and udp["verdict"] == "delivered"


def test_trace_to_a_service_whose_endpoint_a_policy_denies_names_the_policy(services_lab):
    name = services_lab
    data = trace(name, "client", "guarded")
    assert [h["action"] for h in data["hops"]][2] == "dnat"
    last = data["hops"][-1]
    assert last["action"] == "drop" and "default/deny-guarded" in last["detail"] and data["verdict"] == "dropped"
    assert all(h["observed"] for h in data["hops"])
    refused = trace(name, "client", "nothing")   # no endpoints: kube-proxy's reject-chain
    assert [h["action"] for h in refused["hops"]] == ["route", "bridge", "drop"]
    assert "in @no-endpoint-services -> reject-chain" in refused["hops"][-1]["detail"]
    assert refused["verdict"] == "dropped" and all(h["observed"] for h in refused["hops"])
    for bad in (("node-1", "default/web", "--port", "80"), ("client", "default/web"),
                ("client", "web", "--protocol", "icmp")):
        proc = netlab("trace", "--name", name, *bad)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr


@needs_dot
def test_trace_svg_draws_the_path_over_the_lab(demo, tmp_path):
    out = tmp_path / "path.svg"
    proc = netlab("trace", "--name", demo, "web", "db", "--svg", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = sorted(t for t in svg_texts(out.read_text()) if re.match(r"^\d+\. ", t))
    web_veth = host_veth(demo, "node-1", "web")
    # one arrow per change of namespace: web -> node-1 -> vpc -> node-2 -> db
    assert steps == sorted([f"1. eth0 > {web_veth}", "4. eth0 > node-1", "5. node-2 > eth0",
                            f"8. {host_veth(demo, 'node-2', 'db')} > eth0"])
