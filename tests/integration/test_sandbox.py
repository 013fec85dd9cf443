"""Pods as sandboxes: namespaces, hostname, hosts, capabilities, environment; a hostile lab."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from netlab.core import resolvconf
from netlab.kernel import netns, nodefs, procs, sandbox
from netlab.model.security import CAPABILITIES, DEFAULT_CAPS
from netlab.ops import state
from tests.support.kernel import lab_inits, lab_processes, netlab
from tests.support.labs import lab_name, lab_yaml

pytestmark = pytest.mark.root


def pod(name: str, command: list[str], *, extra: str = "", security: str = "", env: str = "") -> str:
    return (f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: node-1\n{extra}"
            f"  containers:\n    - name: c\n      command: {json.dumps(command)}\n{env}{security}")


def cap_mask(names) -> int:
    return sum(1 << CAPABILITIES.index(n) for n in names)


def status_field(pid: int, field: str) -> str:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def wait_for_log(lab: str, pod_name: str, text: str, limit: float = 20.0) -> str:
    path = state.lab_dir(lab) / "logs" / f"default.{pod_name}.c.log"
    deadline = time.monotonic() + limit
    while True:
        out = path.read_text() if path.exists() else ""
        if text in out or time.monotonic() > deadline:
            return out
        time.sleep(0.05)


def container_pid(lab: str, pod_name: str) -> int:
    record = state.load(lab)
    return next(c.pid for p in record.pods if p.name == pod_name for c in p.containers)


def test_each_pod_has_the_resolv_conf_kubelet_writes_for_its_dns_policy(make_lab):
    name = lab_name("rsv")
    with open("/etc/resolv.conf", "rb") as f:
        host_resolv = f.read()
    none = ("  dnsPolicy: None\n  dnsConfig:\n    nameservers: [192.0.2.53, 192.0.2.54]\n"
            "    searches: [corp.example, lab.example.]\n    options: [{name: ndots, value: '2'}, {name: edns0}]\n")
    extra = "  dnsConfig: {searches: [corp.example], options: [{name: ndots, value: '1'}]}\n"
    make_lab(lab_yaml(name, nodes=2, dns=True)
             + pod("web", ["sleep", "300"])
             + pod("fixed", ["sleep", "300"], extra=none)
             + pod("more", ["sleep", "300"], extra=extra)
             + pod("host", ["sleep", "300"], extra="  dnsPolicy: Default\n"))

    def resolv(pod_name: str) -> str:
        return netlab("exec", "--name", name, pod_name, "--", "cat", "/etc/resolv.conf", check=True).stdout

    assert resolv("web") == ("search default.svc.cluster.local svc.cluster.local cluster.local\n"
                             "nameserver 172.18.0.10\noptions ndots:5\n")
    assert resolv("fixed") == ("search corp.example lab.example.\nnameserver 192.0.2.53\nnameserver 192.0.2.54\n"
                               "options ndots:2 edns0\n")
    node = resolvconf.parse(nodefs.host_resolv_conf())   # the node keeps the host's search list, if any
    assert resolv("more") == ("search " + " ".join(["default.svc.cluster.local", "svc.cluster.local", "cluster.local"]
                                                   + [s for s in node.searches if "cluster.local" not in s]
                                                   + ["corp.example"]) + "\nnameserver 172.18.0.10\noptions ndots:1\n")
    assert resolv("host") == resolvconf.node_resolv_conf(nodefs.host_resolv_conf())
    assert "nameserver" not in resolv("host")
    # the cluster DNS pods are there, dnsPolicy Default as kubeadm's
    dns_pods = [p for p in state.load(name).pods if p.namespace == "kube-system"]
    assert sorted(p.node for p in dns_pods) == ["node-1", "node-2"]
    assert resolv(f"kube-system/{dns_pods[0].name}") == resolv("host")
    with open("/etc/resolv.conf", "rb") as f:
        assert f.read() == host_resolv   # the host's file is read, never written


def test_a_pod_is_a_sandbox(make_lab):
    name = lab_name("sbx")
    with open("/etc/hosts") as f:
        host_hosts = f.read()
    host_name = os.uname().nodename
    env = "      env: [{name: GREETING, value: hi}, {name: HOME, value: /srv}]\n"
    make_lab(lab_yaml(name, nodes=1)
             + pod("web", ["sleep", "300"], env=env)
             + pod("b", ["sleep", "300"], extra="  hostname: bee\n"))
    pods = {p.name: p for p in state.load(name).pods}
    assert all(p.sandbox is not None and p.sandbox.pid > 1 for p in pods.values())   # each init recorded
    assert netlab("exec", "--name", name, "web", "--", "hostname", check=True).stdout.strip() == "web"
    assert netlab("exec", "--name", name, "b", "--", "hostname", check=True).stdout.strip() == "bee"
    assert netlab("exec", "--name", name, "node-1", "--", "hostname", check=True).stdout.strip() == "node-1"
    hosts = netlab("exec", "--name", name, "web", "--", "cat", "/etc/hosts", check=True).stdout
    assert hosts.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert hosts.endswith(f"\n{pods['web'].ip}\tweb\n")
    # no cluster DNS in this lab: kubelet falls back to the node's resolv.conf (the host's search
    # and options, no nameserver: a lab has no way to the host's resolvers)
    resolv = netlab("exec", "--name", name, "web", "--", "cat", "/etc/resolv.conf", check=True).stdout
    assert resolv == resolvconf.node_resolv_conf(nodefs.host_resolv_conf())
    # the pod's processes: its init as PID 1, its container; nothing of the host
    ps = netlab("exec", "--name", name, "web", "--", "ps", "-e", "-o", "pid=,comm=", check=True).stdout.split("\n")
    rows = [line.split() for line in ps if line.strip()]
    assert rows[0] == ["1", "catatonit"] and [r[1] for r in rows[1:]] == ["sleep", "ps"]
    # the operator keeps root's powers inside the pod
    assert netlab("exec", "--name", name, "web", "--", "ip", "route", "add", "10.99.0.0/24", "dev", "eth0").returncode == 0
    # the workload: default capabilities, no_new_privs, its own environment only
    pid = container_pid(name, "web")
    assert int(status_field(pid, "CapEff"), 16) == cap_mask(DEFAULT_CAPS)
    assert int(status_field(pid, "CapBnd"), 16) == cap_mask(DEFAULT_CAPS)
    assert status_field(pid, "NoNewPrivs") == "1"
    # signals as a runtime starts a container: none ignored (netlab's Python ignores SIGPIPE), none held
    assert (status_field(pid, "SigIgn"), status_field(pid, "SigBlk")) == ("0" * 16, "0" * 16)
    with open(f"/proc/{pid}/environ", "rb") as f:
        environ = dict(item.decode().split("=", 1) for item in f.read().split(b"\0") if item)
    assert environ == {"PATH": sandbox.PATH, "HOSTNAME": "web", "HOME": "/srv", "GREETING": "hi"}
    # nothing of it reached the host
    with open("/etc/hosts") as f:
        assert f.read() == host_hosts
    assert os.uname().nodename == host_name
    # down's one pass over /proc finds what the separate scans find: both inits, the two sleeps
    inodes = {ino for ino in (netns.inode(n) for n in state.load(name).namespaces) if ino}
    found = sandbox.survey(name, inodes)
    found.close()
    assert set(found.inits) == set(sandbox.find_inits(name, inodes)) and len(found.inits) == 2
    assert found.members == len(sandbox.members(found.inits)) == 2
    assert set(found.marked) == {r for r in procs.find_lab_processes(name, inodes)
                                 if r.container != sandbox.ROLE_INIT}


def test_capabilities_add_drop_and_privileged_are_honoured(make_lab):
    name = lab_name("cap")
    script = ["sh", "-c", "ip link set lo mtu 1400; echo rc=$?; sleep 300"]
    make_lab(lab_yaml(name, nodes=1)
             + pod("plain", script)
             + pod("admin", script, security="      securityContext: {capabilities: {add: [NET_ADMIN], "
                                             "drop: [NET_RAW]}}\n")
             + pod("priv", script, security="      securityContext: {privileged: true}\n"))
    assert "rc=2" in wait_for_log(name, "plain", "rc=")
    assert "rc=0" in wait_for_log(name, "admin", "rc=")
    assert "rc=0" in wait_for_log(name, "priv", "rc=")
    admin = container_pid(name, "admin")
    assert int(status_field(admin, "CapEff"), 16) == cap_mask(DEFAULT_CAPS - {"NET_RAW"} | {"NET_ADMIN"})
    priv = container_pid(name, "priv")
    assert int(status_field(priv, "CapEff"), 16) == int(status_field(os.getpid(), "CapEff"), 16)


HOSTILE = """
nsenter -t 1 -n -m ip link set lo down; echo nsenter-pid1=$?
nsenter --net=/proc/$VICTIM/ns/net true; echo nsenter-victim=$?
ip link set eth0 down; echo iplink=$?
mount -t tmpfs none /mnt; echo mount=$?
echo 0 > /proc/sys/net/ipv4/conf/all/forwarding; echo sysctl=$?
kill -9 $VICTIM; echo kill=$?
env -i sh -c '(setsid sleep 3000 &) &'; echo escaped
echo done
sleep 3000
"""


def test_a_hostile_lab_is_refused_or_contained_and_down_leaves_no_process(make_lab, tmp_path):
    victim = subprocess.Popen(["sleep", "300"])   # a process outside the lab
    try:
        name = lab_name("hos")
        text = lab_yaml(name, nodes=1) + pod(
            "evil", ["sh", "-c", HOSTILE], env=f"      env: [{{name: VICTIM, value: '{victim.pid}'}}]\n")
        path = tmp_path / "hostile.yaml"
        path.write_text(text)
        netlab("up", str(path), check=True)
        try:
            out = wait_for_log(name, "evil", "done")
            results = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
            assert {k: v != "0" for k, v in results.items()} == {
                "nsenter-pid1": True, "nsenter-victim": True, "iplink": True, "mount": True,
                "sysctl": True, "kill": True}, out
            assert victim.poll() is None                       # the host's process lives on
            inits = lab_inits(name)
            spaces = {sandbox.pidns_of(p) for p in inits}
            inside = lab_processes(name)
            assert len(inits) == 1 and len(inside) >= 3        # sh, its sleep, the escaped sleep
            assert subprocess.run(["ip", "-n", f"{name}.default.evil", "link", "show", "eth0", "up"],
                                  capture_output=True, text=True, check=True).stdout
        finally:
            netlab("down", str(path), check=True)
        left = [int(e) for e in os.listdir("/proc") if e.isdigit() and sandbox.pidns_of(int(e)) in spaces
                and not _zombie(int(e))]
        assert left == [] and lab_processes(name) == [] and lab_inits(name) == []
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return True
    return raw[raw.rfind(b")") + 2:].split()[0] == b"Z"


def test_run_directories_are_private_and_a_shared_run_dir_is_refused(make_lab, tmp_path):
    name = lab_name("prv")
    make_lab(lab_yaml(name, nodes=1) + pod("a", ["sleep", "300"]))
    lab_dir = state.lab_dir(name)
    modes = {p: os.stat(p).st_mode & 0o777 for p in (state.run_dir(), lab_dir, lab_dir / "logs",
                                                      lab_dir / "state.json", lab_dir / "logs" / "default.a.c.log")}
    assert list(modes.values()) == [0o700, 0o700, 0o700, 0o600, 0o600], modes
    # a run directory anyone may write to is refused, not used
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    env = dict(os.environ, NETLAB_RUN_DIR=str(shared))
    result = subprocess.run([sys.executable, "-m", "netlab", "status"], capture_output=True, text=True, env=env)
    assert result.returncode == 1 and "mode 0700" in result.stderr, result
    # a state file planted as a symlink is never followed
    planted = tmp_path / "planted.json"
    planted.write_text(json.dumps({"name": "x"}))
    other = lab_name("pl")
    os.mkdir(state.run_dir() / other, 0o700)
    os.symlink(planted, state.run_dir() / other / "state.json")
    try:
        assert state.load(other) is None
    finally:
        os.unlink(state.run_dir() / other / "state.json")
        os.rmdir(state.run_dir() / other)


def test_namespaces_named_by_the_state_file_are_checked_before_use(make_lab):
    """A state file naming a path (/proc/1/ns/net) or a foreign namespace never sends exec there."""
    name = lab_name("st")
    make_lab(lab_yaml(name, nodes=1) + pod("a", ["sleep", "300"]))
    host_net = os.readlink("/proc/self/ns/net")   # PID 1 may be out of reach; the host namespace is ours too
    path = state.state_path(name)
    record = json.loads(path.read_text())
    record["pods"][0]["netns"] = "/proc/self/ns/net"
    record["nodes"][0]["netns"] = "../../proc/self/ns/net"
    path.write_text(json.dumps(record))
    for target in ("a", "node-1"):
        result = netlab("exec", "--name", name, target, "--", "readlink", "/proc/self/ns/net")
        assert host_net not in result.stdout and result.returncode == 1, result
    # a namespace of the planned name, but not the lab's: refused
    foreign = f"{name}.default.zz"
    subprocess.run(["ip", "netns", "add", foreign], check=True)
    try:
        record["pods"].append(dict(record["pods"][0], name="zz", netns=foreign, sandbox=None, containers=[]))
        path.write_text(json.dumps(record))
        result = netlab("exec", "--name", name, "zz", "--", "true")
        assert result.returncode == 1 and "does not carry the mark" in result.stderr, result
    finally:
        subprocess.run(["ip", "netns", "del", foreign], check=True)
