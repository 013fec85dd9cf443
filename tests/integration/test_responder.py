"""The lab's responder: one process serves every container with ports and no command, from the
lab's VPC namespace, with sockets made in each pod's own network namespace.

Each test fails on the per-pod responder it replaced (one Python process per pod, inside the
pod): there the count of responder processes is the count of pods, no process lives in the VPC
namespace, and status has no `responder`.
"""
from __future__ import annotations

import json
import os
import signal
import time

import pytest

from netlab.kernel import kernelmods, kubeproxy, labresponder, netns, procs
from netlab.ops import state
from netlab.spec import loader
from netlab.ops import lab as lab_ops
from tests.support.kernel import lab_inits, lab_namespaces, lab_processes, netlab
from tests.support.labs import lab_name, lab_yaml, pod_yaml

pytestmark = pytest.mark.root

BOTH = "[{containerPort: 80}, {containerPort: 53, protocol: UDP}]"

# from one pod, ask every address on TCP 80 and UDP 53; print "IP tcp-answer udp-answer" per address
ASK = ("import socket,sys\n"
       "for ip in sys.argv[1:]:\n"
       "  t=socket.create_connection((ip,80),timeout=3); a=t.recv(100).decode().strip(); t.close()\n"
       "  u=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); u.settimeout(3); u.sendto(b'x',(ip,53))\n"
       "  print(ip, a, u.recvfrom(100)[0].decode().strip())\n")


def responders(lab: str) -> list[int]:
    """Every process carrying the lab's marker as its responder, wherever it lives."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and procs.carries_marker(int(entry), lab) and not procs.is_zombie(int(entry)):
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            if f"NETLAB_CONTAINER={labresponder.ROLE}".encode() in env:
                out.append(int(entry))
    return out


def socket_fds(pid: int, expected: int) -> int:
    """How many sockets the process holds, once it is `expected` or after 5 s (netlab's control
    connection may still be closing)."""
    deadline = time.monotonic() + 5
    while True:
        count = sum(1 for fd in os.listdir(f"/proc/{pid}/fd") if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"))
        if count == expected or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def ask(lab: str, src: str, ips: list[str]) -> dict[str, tuple[str, str]]:
    out = netlab("exec", src, "--name", lab, "--", "python3", "-c", ASK, *ips, check=True).stdout
    return {ip: (tcp, udp) for ip, tcp, udp in (line.split() for line in out.splitlines())}


def status(lab: str) -> dict:
    return json.loads(netlab("status", "--name", lab, "--json", check=True).stdout)


def test_one_responder_serves_every_pod_from_the_vpc_namespace(tmp_path):
    name = lab_name("rp")
    servers = [f"s{i}" for i in range(6)]
    two = "[{name: t, ports: [{containerPort: 80}]}, {name: u, ports: [{containerPort: 53, protocol: UDP}]}]"
    text = lab_yaml(name) + pod_yaml("client", "node-1", command='["sleep", "300"]') + "".join(
        pod_yaml(s, f"node-{1 + i % 2}", ports=BOTH, containers=two if s == "s0" else None)   # s0: two containers
        for i, s in enumerate(servers))
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    netlab("up", str(path), check=True)
    try:
        (pid,) = responders(name)   # the client's `c` is a sleep; every other `c` is served by this one
        record = state.load(name)
        assert record.responder is not None and record.responder.pid == pid
        served = [c for p in record.pods if p.name in servers for c in p.containers]
        assert len(served) == 7 and {c.pid for c in served} == {pid}
        # where it lives: the lab's VPC namespace, no pod's PID namespace, its own session, no capabilities
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == netns.inode(f"{name}.vpc")
        assert os.stat(f"/proc/{pid}/ns/pid").st_ino == os.stat("/proc/self/ns/pid").st_ino
        assert os.getsid(pid) == pid
        with open(f"/proc/{pid}/status") as f:
            caps = dict(line.split(":\t") for line in f if line.startswith("Cap"))
        assert int(caps["CapEff"], 16) == 0 and int(caps["CapBnd"], 16) == 0
        assert labresponder.find(name, f"{name}.vpc", state.lab_dir(name)) == record.responder
        assert len(lab_processes(name)) == 2 and len(lab_inits(name)) == 7   # the responder and the sleep
        # each socket is in its pod's namespace: the pod's own table shows it
        listening = netlab("exec", "s3", "--name", name, "--", "ss", "-lntu", check=True).stdout
        assert "0.0.0.0:80" in listening and "0.0.0.0:53" in listening
        # every pod answers with its own name, over TCP and UDP, from another pod (cross node too)
        ips = {p.ip: p.name for p in record.pods if p.name in servers}
        assert ask(name, "client", list(ips)) == {ip: (n, n) for ip, n in ips.items()}
        probed = json.loads(netlab("probe", "--name", name, "--port", "80", "--json", check=True).stdout)["results"]
        to_servers = [r for r in probed if r["to"].split("/")[-1] in servers]
        assert len(to_servers) == 6 * 6 and all(r["allowed"] for r in to_servers)
        udp = json.loads(netlab("probe", "--name", name, "--port", "53", "--protocol", "udp", "--json",
                                check=True).stdout)["results"]
        assert [r for r in udp if r["to"].split("/")[-1] in servers] and \
            all(r["allowed"] for r in udp if r["to"].split("/")[-1] in servers)
        # status: each served container running, and the responder itself
        shown = status(name)
        assert all(c["running"] for p in shown["pods"] for c in p["containers"])
        assert shown["responder"] == {"pid": pid, "running": True, "log": record.responder.log, "containers": 7}
        assert "built-in responder: pid" in netlab("status", "--name", name, check=True).stdout
        # readiness (EndpointSlices): each pod's declared ports bound in its own namespace
        assert all(kubeproxy.readiness(record.pods, wait=0).values())
        assert "served by the lab's responder" in netlab("logs", "s1", "--name", name, check=True).stdout
    finally:
        netlab("down", "--name", name, check=True)
    assert lab_namespaces(name) == [] and lab_processes(name) == [] and lab_inits(name) == []
    assert responders(name) == []


def test_up_again_hands_over_and_takes_back_a_pods_sockets(make_lab, tmp_path):
    name = lab_name("ra")
    base = lab_yaml(name) + pod_yaml("a", "node-1", ports=BOTH)
    _, _, path = make_lab(base + pod_yaml("b", "node-2", ports=BOTH))
    rec = state.load(name).responder
    assert socket_fds(rec.pid, 4 + 1) == 4 + 1   # two pods' two ports, and the control socket
    # b goes, c comes: the same responder closes b's sockets (its namespace can go) and serves c's
    path.write_text(base + pod_yaml("c", "node-2", ports="[{containerPort: 8080}]"))
    changed = lab_ops.up(loader.load_file(str(path)))
    assert (changed.created, changed.removed) == (1, 1)
    assert state.load(name).responder == rec and procs.alive(rec)
    assert socket_fds(rec.pid, 3 + 1) == 3 + 1
    c_ip = state.load(name).pod("default/c").ip
    script = f"import socket; print(socket.create_connection(('{c_ip}', 8080), timeout=3).recv(99).decode())"
    assert netlab("exec", "a", "--name", name, "--", "python3", "-c", script, check=True).stdout.strip() == "c"
    # a pod rebuilt in place (its ports changed): its old sockets closed first, the new one bound
    path.write_text(base + pod_yaml("c", "node-2", ports="[{containerPort: 8081}]"))
    lab_ops.up(loader.load_file(str(path)))
    assert socket_fds(rec.pid, 3 + 1) == 3 + 1 and state.load(name).responder == rec
    c_ip = state.load(name).pod("default/c").ip
    script = f"import socket; print(socket.create_connection(('{c_ip}', 8081), timeout=3).recv(99).decode())"
    assert netlab("exec", "a", "--name", name, "--", "python3", "-c", script, check=True).stdout.strip() == "c"
    # no pod with ports left: the responder is stopped
    path.write_text(lab_yaml(name) + pod_yaml("a", "node-1", command='["sleep", "300"]'))
    lab_ops.up(loader.load_file(str(path)))
    assert not procs.alive(rec) or procs.is_zombie(rec.pid)
    assert responders(name) == [] and state.load(name).responder is None


def test_a_killed_responder_is_reported_and_up_starts_it_again(make_lab):
    name = lab_name("rk")
    make_lab(lab_yaml(name) + pod_yaml("a", "node-1", ports=BOTH) + pod_yaml("b", "node-2", ports=BOTH))
    rec = state.load(name).responder
    os.kill(rec.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while procs.alive(rec) and not procs.is_zombie(rec.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    shown = status(name)
    assert shown["responder"]["running"] is False
    assert [c["running"] for p in shown["pods"] for c in p["containers"]] == [False, False]
    assert "not running" in netlab("status", "--name", name, check=True).stdout
    assert not any(kubeproxy.readiness(state.load(name).pods, wait=0).values())
    again = lab_ops.up(loader.load_file(str(state.load(name).source)))
    assert again.started == 2
    new = state.load(name).responder
    assert new.pid != rec.pid and status(name)["responder"]["running"]
    ips = {p.ip: p.name for p in state.load(name).pods}
    assert ask(name, "a", list(ips)) == {ip: (n, n) for ip, n in ips.items()}


def test_an_sctp_port_the_kernel_cannot_serve_is_named_before_anything_is_built(tmp_path):
    """On a kernel without SCTP (or with the sctp module unloaded, which netlab never loads) a lab
    whose responder would serve an SCTP port is refused before anything is built."""
    state_ = kernelmods.module_state("sctp")
    if state_ in (kernelmods.ModuleState.LOADED, kernelmods.ModuleState.BUILTIN):
        pytest.skip("this kernel has SCTP: the port is served like the others")
    name = lab_name("sc")
    path = tmp_path / "lab.yaml"
    path.write_text(lab_yaml(name) + pod_yaml("a", "node-1", ports="[{containerPort: 9, protocol: SCTP}]"))
    result = netlab("up", str(path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "SCTP" in result.stderr and "nothing was created" in result.stderr
    assert ("modprobe sctp" if state_ is kernelmods.ModuleState.LOADABLE else "CONFIG_IP_SCTP") in result.stderr
    assert lab_namespaces(name) == [] and state.load(name) is None and responders(name) == []
