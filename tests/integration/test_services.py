"""Services on real namespaces: kube-proxy's rules in the nodes, real traffic through them.

topologies/services.yaml is built once per kube-proxy mode (nftables, then iptables; under a
name unique to the run); every check of the `lab` fixture runs in both modes and sends
real connections from inside pods, nodes or the VPC namespace, and the built-in responders
answer with the pod's name, so which endpoint answered is visible.
"""
from __future__ import annotations

import errno
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from netlab.kernel import procs
from netlab.ops import lab as lab_ops, state
from netlab.ops.record import LabRecord, PodRecord, ServiceRecord
from netlab.spec import loader
from tests.support.kernel import lab_namespaces, lab_processes, netlab
from tests.support.labs import lab_name, lab_yaml, pod_yaml, without_dns

pytestmark = pytest.mark.root

TOPOLOGY = Path(__file__).parents[2] / "topologies" / "services.yaml"

# Runs inside a namespace: connect N times (TCP, or one datagram each for UDP), print one JSON list
# of what each attempt got: the answer's first line, or "errno:<name>".
CLIENT = r"""
import errno, json, socket, sys
host, port, count, proto, timeout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
out = []
for _ in range(count):
    s = None
    try:
        if proto == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(timeout)
            s.sendto(b"?", (host, port)); data = s.recvfrom(200)[0]
        else:
            s = socket.create_connection((host, port), timeout=timeout); data = s.recv(200)
        out.append(data.decode().strip())
    except socket.timeout:
        out.append("errno:timeout")
    except OSError as err:
        out.append("errno:" + errno.errorcode.get(err.errno, str(err.errno)))
    finally:
        if s is not None:
            s.close()
print(json.dumps(out))
"""


@pytest.fixture(scope="module", params=["nftables", "iptables"])
def lab(request, tmp_path_factory):
    name = lab_name("svc" if request.param == "nftables" else "svcipt")
    text = TOPOLOGY.read_text().replace("name: services\n", f"name: {name}\n", 1) \
        .replace("kubeProxy: {mode: nftables}", f"kubeProxy: {{mode: {request.param}}}", 1)
    assert f"mode: {request.param}" in text
    path = tmp_path_factory.mktemp("svc") / "services.yaml"
    path.write_text(text)
    labfile = loader.load_file(str(path))
    lab_ops.up(labfile)
    try:
        yield state.load(name)
    finally:
        lab_ops.down(name)


def connect(ns: str, host: str, port: int, count: int = 1, proto: str = "tcp", timeout: float = 5.0) -> list[str]:
    proc = procs.popen_in(ns, [sys.executable, "-c", CLIENT, host, str(port), str(count), proto, str(timeout)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=60 + count * timeout)
    assert proc.returncode == 0, err
    return json.loads(out)


def service(record: LabRecord, name: str) -> ServiceRecord:
    return next(s for s in record.services if s.key == f"default/{name}")


def shown(status: dict, name: str) -> dict:
    """A Service as `status --json` shows it."""
    return next(s for s in status["services"] if s["namespace"] == "default" and s["name"] == name)


def pod_ns(record: LabRecord, prefix: str) -> list[PodRecord]:
    return [p for p in record.pods if p.name.startswith(prefix)]


def web_names(record: LabRecord) -> set[str]:
    return {p.name for p in pod_ns(record, "web-")}


def pids(record: LabRecord) -> dict[str, list[int]]:
    return {p.name: [c.pid for c in p.containers] for p in record.pods}


def test_status_lists_services_with_endpoint_slices(lab):
    out = json.loads(netlab("status", "--name", lab.name, "--json", check=True).stdout)
    kube = shown(out, "kubernetes")
    assert kube["clusterIP"] == "172.18.0.1" and kube["endpoints"] == [] and "no API server" in kube["note"]
    web = shown(out, "web")
    assert web["type"] == "ClusterIP"
    assert web["ports"][0] == {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP", "nodePort": None}
    assert sorted(e["pod"] for e in web["endpoints"]) == sorted(f"default/{n}" for n in web_names(lab))
    assert all(e["ready"] for e in web["endpoints"])
    assert shown(out, "guarded")["clusterIP"] == "172.18.0.100"
    assert shown(out, "web-nodeport")["ports"][0]["nodePort"] == 30080


def test_clusterip_from_the_same_node_spreads_over_every_endpoint(lab):
    client = pod_ns(lab, "client")[0]
    answers = connect(client.netns, service(lab, "web").cluster_ip, 80, count=40)
    assert set(answers) == web_names(lab)   # three endpoints, 40 tries: each misses with p < 1e-6


def test_clusterip_from_another_node(lab):
    client2 = next(p for p in lab.pods if p.name == "client2")
    answers = connect(client2.netns, service(lab, "web").cluster_ip, 80, count=20)
    assert set(answers) <= web_names(lab) and answers and len(set(answers)) >= 2


def test_udp_service_port(lab):
    client = pod_ns(lab, "client")[0]
    answers = connect(client.netns, service(lab, "web").cluster_ip, 53, count=5, proto="udp")
    assert set(answers) <= web_names(lab) and len(answers) == 5


def test_hairpin_a_pod_reaches_itself_through_its_service(lab):
    pod = pod_ns(lab, "web-")[0]
    answers = connect(pod.netns, service(lab, "web").cluster_ip, 80, count=60)
    assert pod.name in answers and set(answers) <= web_names(lab)


def test_client_ip_affinity_sticks(lab):
    client = pod_ns(lab, "client")[0]
    answers = connect(client.netns, service(lab, "web-sticky").cluster_ip, 80, count=15)
    assert len(set(answers)) == 1 and answers[0] in web_names(lab)


def test_service_without_endpoints_refuses_at_once(lab):
    client = pod_ns(lab, "client")[0]
    assert connect(client.netns, service(lab, "nothing").cluster_ip, 80, timeout=5.0) == ["errno:ECONNREFUSED"]


def test_unserved_port_of_a_clusterip_is_rejected(lab):
    if mode(lab) == "iptables":
        pytest.skip("kube-proxy's iptables mode has no cluster-ips-check: only its nftables mode rejects there")
    client = pod_ns(lab, "client")[0]
    assert connect(client.netns, service(lab, "web").cluster_ip, 81, timeout=5.0) == ["errno:ECONNREFUSED"]


def test_nodeport_answers_on_every_node_from_another_node_and_from_the_vpc(lab):
    ips = [n.underlay_ip for n in lab.nodes]
    for ip in ips:
        assert set(connect(lab.underlay.netns, ip, 30080, count=3)) <= web_names(lab)
        other = next(n for n in lab.nodes if n.underlay_ip != ip)
        assert set(connect(other.netns, ip, 30080, count=3)) <= web_names(lab)


def test_external_traffic_policy_local_keeps_the_source_and_answers_only_where_an_endpoint_runs(lab):
    whoami = pod_ns(lab, "whoami-")[0]
    home = next(n for n in lab.nodes if n.name == whoami.node)
    away = next(n for n in lab.nodes if n.name != whoami.node)
    vpc = lab.underlay.netns
    vpc_ip = connect(vpc, home.underlay_ip, 30090)[0]
    assert vpc_ip.startswith("10.250.") and vpc_ip not in {n.underlay_ip for n in lab.nodes}
    assert connect(vpc, away.underlay_ip, 30090, timeout=1.0) == ["errno:timeout"]   # dropped, as upstream


def test_network_policy_denying_the_backend_denies_its_service(lab):
    client = pod_ns(lab, "client")[0]
    guarded = pod_ns(lab, "guarded-")[0]
    assert connect(client.netns, "172.18.0.100", 80, timeout=1.0) == ["errno:timeout"]
    assert connect(client.netns, guarded.ip, 8080, timeout=1.0) == ["errno:timeout"]


def mode(record: LabRecord) -> str:
    return "iptables" if "svcipt" in record.name else "nftables"


def test_node_holds_kube_proxys_table(lab):
    if mode(lab) == "iptables":
        pytest.skip("the nftables mode's table; test_node_holds_kube_proxys_iptables_chains checks iptables mode")
    node = lab.nodes[0].netns
    out = subprocess.run(["ip", "netns", "exec", node, "nft", "list", "table", "ip", "kube-proxy"],
                         capture_output=True, text=True, check=True).stdout
    assert "service-SUSTUHLJ-default/web/tcp/http" in out
    assert "masquerade fully-random" in out and "numgen random mod 3" in out


def test_node_holds_kube_proxys_iptables_chains(lab):
    if mode(lab) != "iptables":
        pytest.skip("iptables mode only")
    node = lab.nodes[0].netns
    out = subprocess.run(["ip", "netns", "exec", node, "iptables-save"], capture_output=True, text=True,
                         check=True).stdout
    web = service(lab, "web")
    assert f'-A KUBE-SERVICES -d {web.cluster_ip}/32 -p tcp -m comment --comment "default/web:http cluster IP"' in out
    assert "-j KUBE-SVC-CDGGSHYLG3RE2FKL" in out   # base32(sha256("default/web:http" + "tcp"))[:16]
    assert "--mode random --probability 0.33333333349" in out and "-j MASQUERADE --random-fully" in out
    assert "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000" in out
    nft = subprocess.run(["ip", "netns", "exec", node, "nft", "list", "tables"], capture_output=True, text=True,
                         check=True).stdout
    assert "kube-proxy" not in nft   # one kube-proxy per node: the nftables mode's table is not there


def test_down_leaves_nothing(tmp_path):
    name = lab_name("svcdown")
    path = tmp_path / "s.yaml"
    path.write_text(TOPOLOGY.read_text().replace("name: services\n", f"name: {name}\n", 1))
    netlab("up", str(path), "-q", check=True)
    netlab("down", "--name", name, check=True)
    assert lab_namespaces(name) == [] and lab_processes(name) == []


def test_probe_services_one_entry_per_pod_and_service_port(lab):
    out = json.loads(netlab("probe", "--name", lab.name, "--services", "--json", check=True).stdout)["results"]
    ports = [(s, p) for s in lab.services if s.cluster_ip not in (None, "None") for p in s.ports]
    assert len(out) == len(lab.pods) * len(ports)
    got = {(r["from"], r["to"], r["port"], r["protocol"]): r for r in out}
    client = "default/client"
    assert got[(client, "svc/default/web", 80, "TCP")]["allowed"]
    assert got[(client, "svc/default/web", 53, "UDP")]["allowed"]
    assert got[(client, "svc/default/nothing", 80, "TCP")]["outcome"] == "refused"
    assert got[(client, "svc/default/kubernetes", 443, "TCP")]["outcome"] == "refused"
    assert got[(client, "svc/default/guarded", 80, "TCP")]["outcome"] == "timeout"


def test_up_again_scales_a_deployment_touching_only_the_new_pods_and_apply_rewrites_services(tmp_path):
    name = lab_name("svcscale")
    # the file's own pods, without cluster DNS: this test is about the Deployment and the Services
    text = without_dns(TOPOLOGY.read_text()).replace("name: services\n", f"name: {name}\n", 1)
    path = tmp_path / "s.yaml"
    path.write_text(text)
    netlab("up", str(path), "-q", check=True)
    try:
        before = pids(state.load(name))
        path.write_text(text.replace("replicas: 3", "replicas: 4", 1))
        netlab("up", str(path), "-q", check=True)
        record = state.load(name)
        after = pids(record)
        added = set(after) - set(before)
        assert len(added) == 1 and next(iter(added)).startswith("web-") and set(before) <= set(after)
        assert all(after[n] == before[n] for n in before)   # nothing else restarted
        assert len(service(record, "web").endpoints) == 4
        client = next(p for p in record.pods if p.name == "client")
        assert set(connect(client.netns, service(record, "web").cluster_ip, 80, count=40)) == \
            {n for n in after if n.startswith("web-")}
        # UDP flows to the replica about to go: conntrack keeps them until kube-proxy's cleanup
        gone = next(p for p in record.pods if p.name in added)
        udp = connect(client.netns, service(record, "web").cluster_ip, 53, count=40, proto="udp")
        assert gone.name in udp
        node1 = next(n for n in record.nodes if n.name == client.node).netns
        assert conntrack_udp(node1, gone.ip) > 0
        path.write_text(text)
        netlab("up", str(path), "-q", check=True)   # back to 3 replicas: the 4th pod and its flows go
        assert gone.name not in {p.name for p in state.load(name).pods}
        assert conntrack_udp(node1, gone.ip) == 0
        path.write_text(text.replace("replicas: 3", "replicas: 4", 1))
        netlab("up", str(path), "-q", check=True)
        after = pids(state.load(name))
        # a Service changed by apply: web's port 80 moves to 8081, nothing rebuilt
        path.write_text(text.replace("replicas: 3", "replicas: 4", 1)
                        .replace("- {name: http, port: 80, targetPort: http}", "- {name: http, port: 8081, targetPort: http}"))
        netlab("apply", str(path), check=True)
        ip = service(state.load(name), "web").cluster_ip
        assert connect(client.netns, ip, 80, timeout=5.0) == ["errno:ECONNREFUSED"]
        assert set(connect(client.netns, ip, 8081, count=3)) <= set(after)
        assert pids(state.load(name)) == after  # no restart
    finally:
        netlab("down", "--name", name)


def test_apply_switches_kube_proxy_mode_leaving_no_rules_of_the_other(tmp_path):
    name = lab_name("svcmode")
    text = TOPOLOGY.read_text().replace("name: services\n", f"name: {name}\n", 1)
    iptables_text = text.replace("kubeProxy: {mode: nftables}", "kubeProxy: {mode: iptables}", 1)
    assert iptables_text != text
    path = tmp_path / "s.yaml"
    path.write_text(iptables_text)
    netlab("up", str(path), "-q", check=True)
    try:
        record = state.load(name)
        node, client = record.nodes[0].netns, next(p for p in record.pods if p.name == "client")

        def kube_chains() -> int:
            out = subprocess.run(["ip", "netns", "exec", node, "iptables-save"], capture_output=True, text=True,
                                 check=True).stdout
            return sum(1 for line in out.splitlines() if line.startswith(":KUBE-"))

        def nft_tables() -> str:
            return subprocess.run(["ip", "netns", "exec", node, "nft", "list", "tables"], capture_output=True,
                                  text=True, check=True).stdout
        assert kube_chains() > 10 and "kube-proxy" not in nft_tables()
        path.write_text(text)
        netlab("apply", str(path), check=True)
        assert kube_chains() == 0 and "table ip kube-proxy" in nft_tables()
        assert set(connect(client.netns, service(record, "web").cluster_ip, 80, count=10)) <= web_names(record)
        path.write_text(iptables_text)
        netlab("apply", str(path), check=True)
        assert kube_chains() > 10 and "kube-proxy" not in nft_tables()
        assert set(connect(client.netns, service(record, "web").cluster_ip, 80, count=10)) <= web_names(record)
    finally:
        netlab("down", "--name", name)


def conntrack_udp(ns: str, reply_src: str) -> int:
    """UDP conntrack entries in a node whose reply comes from `reply_src` (an endpoint after DNAT)."""
    proc = procs.popen_in(ns, ["conntrack", "-L", "-p", "udp", "--reply-src", reply_src],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out, _ = proc.communicate(timeout=30)
    return sum(1 for line in out.splitlines() if line.startswith("udp"))


WEB_SERVICE = """\
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80}]
"""


def test_an_endpoint_that_never_binds_is_left_out_of_the_rules_and_the_zone(tmp_path):
    """`up` writes the Services' rules and the DNS zones while the pods start, as if every new pod
    became ready; a pod that never binds its port must then be taken out of both again."""
    name = lab_name("svcsilent")
    path = tmp_path / "silent.yaml"
    path.write_text(lab_yaml(name, dns=True, pods=WEB_SERVICE + pod_yaml("served", "node-1", labels="app: web")
                             + pod_yaml("silent", "node-2", labels="app: web", containers=(
                                 "[{name: web, command: [sleep, infinity], ports: [{containerPort: 80}]}]"))))
    try:
        netlab("up", str(path), "-q", check=True)
        record = state.load(name)
        ips = {p.name: p.ip for p in record.pods}
        assert {e.ip: e.ready for e in service(record, "web").endpoints} == {ips["served"]: True, ips["silent"]: False}
        for node in record.nodes:
            table = subprocess.run(["ip", "netns", "exec", node.netns, "nft", "list", "table", "ip", "kube-proxy"],
                                   capture_output=True, text=True, check=True).stdout
            assert ips["served"] in table and ips["silent"] not in table, node.name
        zone = (state.lab_dir(name) / "dns" / "etc" / "cluster.local.zone").read_text()
        dashed = {pod: ip.replace(".", "-") for pod, ip in ips.items()}
        assert f"{dashed['served']}.web.default.svc" in zone and f"{dashed['silent']}.web.default.svc" not in zone
    finally:
        netlab("down", "--name", name)
