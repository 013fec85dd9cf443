"""The core lab on real namespaces: reachability, flannel's exact entries, containers, converge, down."""
from __future__ import annotations

import itertools
import json
import time

import pytest

from netlab.ops import lab as lab_ops
from netlab.spec import loader
from tests.support.labs import lab_name, lab_yaml, pod_yaml
from tests.support.kernel import bridge, ip, lab_inits, lab_namespaces, lab_processes, netlab, pings

pytestmark = pytest.mark.root

FOUR_PODS = (pod_yaml("a1", "node-1") + pod_yaml("a2", "node-1")
             + pod_yaml("b1", "node-2") + pod_yaml("b2", "node-2", namespace="other"))


@pytest.mark.parametrize("backend", ["vxlan", "host-gw"])
def test_every_pod_pair_is_reachable(make_lab, backend):
    name = lab_name(backend[:2])
    labfile, result, _ = make_lab(lab_yaml(name, backend=backend) + FOUR_PODS)
    pods = {p.name: p for p in lab_ops.state.load(name).pods}
    assert result.created == 1 + 2 + 4
    failed = [(a, b) for a, b in itertools.permutations(pods, 2) if not pings(pods[a].netns, pods[b].ip)]
    assert failed == []


def test_flannel_vxlan_entries_are_exactly_flannels(make_lab):
    name = lab_name("vx")
    make_lab(lab_yaml(name, nodes=3))
    ns = f"{name}.node-1"
    link = ip(ns, "link", "show", "flannel.1")[0]
    vx = link["linkinfo"]["info_data"]
    assert (vx["id"], vx["port"], vx["learning"], vx["local"], link["mtu"]) == (1, 8472, False, "10.250.0.10", 1450)
    addrs = [(a["local"], a["prefixlen"]) for a in ip(ns, "addr", "show", "flannel.1")[0]["addr_info"]
             if a["family"] == "inet"]
    assert addrs == [("172.16.0.0", 32)]
    neigh = {n["dst"]: n for n in ip(ns, "neigh", "show", "dev", "flannel.1")}
    assert set(neigh) == {"172.16.1.0", "172.16.2.0"}
    assert all(n["state"] == ["PERMANENT"] for n in neigh.values())
    fdb = {(f["mac"], f["dst"]) for f in bridge(ns, "fdb", "show", "dev", "flannel.1")}
    assert fdb == {(neigh["172.16.1.0"]["lladdr"], "10.250.0.11"), (neigh["172.16.2.0"]["lladdr"], "10.250.0.12")}
    routes = {r["dst"]: r for r in ip(ns, "route", "show", "dev", "flannel.1")}
    assert routes["172.16.1.0/24"]["gateway"] == "172.16.1.0" and "onlink" in routes["172.16.1.0/24"]["flags"]
    remote_mac = ip(f"{name}.node-2", "link", "show", "flannel.1")[0]["address"]
    assert neigh["172.16.1.0"]["lladdr"] == remote_mac
    cni0 = ip(ns, "link", "show", "cni0")[0]
    assert cni0["mtu"] == 1450 and cni0["linkinfo"]["info_kind"] == "bridge"


def test_pod_namespace_shape_and_node_side(make_lab):
    name = lab_name("sh")
    make_lab(lab_yaml(name, backend="host-gw") + pod_yaml("a", "node-1"))
    pod_ns, node_ns = f"{name}.default.a", f"{name}.node-1"
    eth0 = ip(pod_ns, "link", "show", "eth0")[0]
    assert eth0["mtu"] == 1500 and "UP" in eth0["flags"]
    assert "UP" in ip(pod_ns, "link", "show", "lo")[0]["flags"]
    routes = {(r["dst"], r.get("gateway")) for r in ip(pod_ns, "route", "show")}
    assert routes == {("172.16.0.0/24", None), ("172.16.0.0/16", "172.16.0.1"), ("default", "172.16.0.1")}
    ports = [l for l in ip(node_ns, "link", "show", "master", "cni0")]
    assert len(ports) == 1 and ports[0]["ifname"].startswith("veth") and len(ports[0]["ifname"]) == 12
    assert ports[0]["linkinfo"]["info_slave_data"]["hairpin"] is True
    node_routes = {(r["dst"], r.get("gateway"), r.get("dev")) for r in ip(node_ns, "route", "show")}
    assert ("172.16.1.0/24", "10.250.0.11", "eth0") in node_routes
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        host_forwarding = f.read()
    assert netlab("exec", "node-1", "--name", name, "--", "cat",
                  "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert f.read() == host_forwarding


def test_status_json_has_the_contract_keys_and_subnet_env(make_lab):
    name = lab_name("st")
    make_lab(lab_yaml(name) + pod_yaml("a", "node-2"))
    data = json.loads(netlab("status", "--name", name, "--json", check=True).stdout)
    assert data["name"] == name and data["backend"] == "vxlan"
    assert data["networking"] == {"podSubnet": "172.16.0.0/16", "serviceSubnet": "172.18.0.0/20",
                                  "dnsDomain": "cluster.local"}
    node2 = data["nodes"][1]
    assert {k: node2[k] for k in ("name", "netns", "podCIDR", "underlayIP")} == {
        "name": "node-2", "netns": f"{name}.node-2", "podCIDR": "172.16.1.0/24", "underlayIP": "10.250.0.11"}
    assert node2["subnetEnv"] == {"FLANNEL_NETWORK": "172.16.0.0/16", "FLANNEL_SUBNET": "172.16.1.1/24",
                                  "FLANNEL_MTU": "1450", "FLANNEL_IPMASQ": "true"}
    pod = data["pods"][0]
    assert {k: pod[k] for k in ("name", "namespace", "node", "ip", "netns")} == {
        "name": "a", "namespace": "default", "node": "node-2", "ip": "172.16.1.2", "netns": f"{name}.default.a"}


def test_exec_passes_the_exit_code_and_runs_inside_the_pod(make_lab):
    name = lab_name("ex")
    make_lab(lab_yaml(name) + pod_yaml("a", "node-1"))
    assert netlab("exec", "a", "--name", name, "--", "sh", "-c", "exit 7").returncode == 7
    out = netlab("exec", "default/a", "--name", name, "--", "ip", "-4", "-o", "addr", "show", "eth0").stdout
    assert "172.16.0.2/24" in out
    assert netlab("exec", "nosuchpod", "--name", name, "--", "true").returncode == 2


def test_containers_share_loopback_and_log(make_lab):
    name = lab_name("lo")
    server = '["python3", "-m", "http.server", "--bind", "127.0.0.1", "9000"]'
    client = ('["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do python3 -c \\"import urllib.request as u; '
              'u.urlopen(\'http://127.0.0.1:9000/\'); print(\'loopback ok\', flush=True)\\" && break; '
              'sleep 0.5; done; sleep 60"]')
    pod = pod_yaml("p", "node-1", command=server).replace(
        "containers: [{name: c, command: " + server + "}]",
        f"containers: [{{name: server, command: {server}}}, {{name: client, command: {client}}}]")
    make_lab(lab_yaml(name, nodes=1) + pod)
    deadline = time.time() + 15
    out = ""
    while time.time() < deadline and "loopback ok" not in out:
        time.sleep(0.3)
        out = netlab("logs", "p", "-c", "client", "--name", name).stdout
    assert "loopback ok" in out
    assert netlab("logs", "p", "--name", name).returncode == 2   # two containers: -c needed
    # nothing listens on the pod's eth0: the server is reachable over loopback only
    assert "127.0.0.1:9000" in netlab("exec", "p", "--name", name, "--", "ss", "-ltn").stdout


def test_builtin_responder_answers_tcp_and_udp(make_lab):
    name = lab_name("rs")
    make_lab(lab_yaml(name) + pod_yaml("a", "node-1")
             + pod_yaml("b", "node-2", ports="[{containerPort: 80}, {containerPort: 53, protocol: UDP}]"))
    script = ("import socket,time\n"
              "for _ in range(50):\n"
              "  try: s=socket.create_connection(('172.16.1.2',80),timeout=1); break\n"
              "  except OSError: time.sleep(0.1)\n"
              "print(s.recv(100).decode().strip())\n"
              "u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.settimeout(2)\n"
              "u.sendto(b'x',('172.16.1.2',53)); print(u.recvfrom(100)[0].decode().strip())\n")
    out = netlab("exec", "a", "--name", name, "--", "python3", "-c", script).stdout.split()
    assert out == ["b", "b"]


def test_up_twice_converges_and_a_change_rebuilds_only_what_changed(make_lab, tmp_path):
    name = lab_name("cv")
    text = lab_yaml(name) + pod_yaml("a", "node-1") + pod_yaml("b", "node-2")
    labfile, first, path = make_lab(text)
    pids = {c.pid for c in lab_ops.state.load(name).containers}
    again = lab_ops.up(loader.load_file(str(path)))
    assert (again.created, again.removed, again.kept, again.started) == (0, 0, first.created, 0)
    assert pids == {c.pid for c in lab_ops.state.load(name).containers}
    path.write_text(lab_yaml(name) + pod_yaml("a", "node-1") + pod_yaml("c", "node-2"))
    changed = lab_ops.up(loader.load_file(str(path)))
    assert (changed.created, changed.removed) == (1, 1)
    assert sorted(lab_namespaces(name)) == sorted([f"{name}.vpc", f"{name}.node-1", f"{name}.node-2",
                                                    f"{name}.default.a", f"{name}.default.c"])


def test_down_leaves_no_namespace_and_no_process(tmp_path):
    name = lab_name("dn")
    path = tmp_path / "lab.yaml"
    path.write_text(lab_yaml(name) + pod_yaml("a", "node-1") + pod_yaml("b", "node-2", command='["sleep", "300"]'))
    netlab("up", str(path), check=True)
    try:
        assert len(lab_namespaces(name)) == 5 and len(lab_processes(name)) == 2 and len(lab_inits(name)) == 2
    finally:
        out = netlab("down", str(path), check=True).stdout
    assert "removed 5 namespaces" in out
    assert lab_namespaces(name) == [] and lab_processes(name) == [] and lab_inits(name) == []
