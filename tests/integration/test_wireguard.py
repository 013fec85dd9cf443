"""The wireguard backend on real labs: encryption proven by a capture on the underlay (and the
same capture finding the marker on a vxlan lab), status from `wg show`, node daemons owned like
containers, peers converged when nodes come and go, keys rotated on a running lab.

Here the kernel has no WireGuard, so this runs wireguard-go; in the VM (modprobe wireguard) the
kernel's device. NETLAB_WIREGUARD=userspace forces wireguard-go where the kernel has it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from netlab.kernel import procs
from netlab.kernel import wireguard as wg
from netlab.kernel.apply import probe_link_kinds
from netlab.ops import state
from netlab.ops.record import PodRecord
from tests.support.kernel import lab_namespaces, lab_processes, netlab
from tests.support.labs import lab_name, lab_yaml, pod_yaml

pytestmark = pytest.mark.root

MARKER = b"NETLAB-MARKER-5f1e2d3c"


def implementation() -> wg.Implementation | str:
    try:
        return wg.choose(probe_link_kinds)[0]
    except Exception as err:   # noqa: BLE001 — the reason to skip
        return str(err)


IMPL = implementation()
needs_wireguard = pytest.mark.skipif(not isinstance(IMPL, wg.Implementation), reason=str(IMPL))
needs_tcpdump = pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed")


def two_node_lab(name: str, backend: str, nodes: int = 2, extra_spec: str = "") -> str:
    pods = pod_yaml("a", "node-1") + pod_yaml("b", "node-2") + pod_yaml("c", "node-1")
    return lab_yaml(name, backend=backend, nodes=nodes, pods=pods, extra_spec=extra_spec)


@pytest.fixture
def lab_file(tmp_path):
    made: list[str] = []

    def make(text: str, name: str) -> str:
        path = tmp_path / f"{name}-{len(made)}.yaml"
        path.write_text(text)
        made.append(name)
        return str(path)
    yield make
    for name in set(made):
        netlab("down", "--name", name)


def pods(name: str) -> dict[str, PodRecord]:
    return {p.name: p for p in state.load(name).pods}


def send_marker(src_netns: str, dst_ip: str) -> None:
    """UDP datagrams carrying the marker, from a pod (no listener needed: the wire is what counts)."""
    code = (f"import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"for _ in range(5): s.sendto({MARKER!r}, ('{dst_ip}', 9))")
    assert procs.popen_in(src_netns, ["python3", "-c", code]).wait() == 0


def capture_while(vpc_netns: str, action) -> tuple[bytes, str]:
    """Everything on the VPC bridge while `action` runs: the pcap's bytes and tcpdump's summary."""
    with tempfile.TemporaryDirectory() as tmp:
        pcap = os.path.join(tmp, "underlay.pcap")
        dump = procs.popen_in(vpc_netns, ["tcpdump", "-i", "vpc0", "--immediate-mode", "-U", "-n", "-Z", "root", "-w", pcap],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        assert "listening on" in dump.stderr.readline()   # capturing before anything is sent
        try:
            action()
        finally:
            dump.send_signal(signal.SIGINT)
            dump.communicate(timeout=30)
        summary = subprocess.run(["tcpdump", "-r", pcap, "-n", "-q"], capture_output=True, text=True).stdout
        return Path(pcap).read_bytes(), summary


def ping_ok(src_netns: str, dst_ip: str) -> bool:
    """A reply to one of three echoes (the first may wait for a handshake on a loaded machine)."""
    done = procs.popen_in(src_netns, ["ping", "-c", "3", "-i", "0.5", "-W", "3", dst_ip],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out, _ = done.communicate()
    return done.returncode == 0 or print(out, "namespaces now:", lab_namespaces(src_netns.split(".")[0]))


@needs_wireguard
@needs_tcpdump
def test_pod_traffic_between_nodes_crosses_the_underlay_only_as_udp_51820(lab_file):
    name = lab_name("wg")
    netlab("up", lab_file(two_node_lab(name, "wireguard"), name), check=True)
    p = pods(name)
    assert ping_ok(p["a"].netns, p["b"].ip)     # handshake done before the capture

    def traffic():
        send_marker(p["a"].netns, p["b"].ip)
        assert ping_ok(p["a"].netns, p["b"].ip)
    raw, summary = capture_while(f"{name}.vpc", traffic)
    ip_lines = [line for line in summary.splitlines() if " IP " in line]   # IPv6 link-local chatter aside
    assert ip_lines, summary
    underlay = re.compile(r"IP 10\.250\.0\.1[01]\.51820 > 10\.250\.0\.1[01]\.51820: UDP")
    assert all(underlay.search(line) for line in ip_lines), summary
    assert MARKER not in raw
    # same-node traffic never reaches the underlay at all (nor is it encrypted)
    raw_same, summary_same = capture_while(f"{name}.vpc", lambda: send_marker(p["a"].netns, p["c"].ip))
    assert MARKER not in raw_same and " IP " not in summary_same


@needs_tcpdump
def test_the_same_capture_on_a_vxlan_lab_finds_the_marker(lab_file):
    """The capture can fail: without encryption the marker is on the wire."""
    name = lab_name("wgvx")
    netlab("up", lab_file(two_node_lab(name, "vxlan"), name), check=True)
    p = pods(name)
    raw, summary = capture_while(f"{name}.vpc", lambda: send_marker(p["a"].netns, p["b"].ip))
    assert MARKER in raw
    assert ".8472" in summary


@needs_wireguard
def test_status_shows_implementation_handshakes_and_counters(lab_file):
    name = lab_name("wgst")
    netlab("up", lab_file(two_node_lab(name, "wireguard"), name), check=True)
    p = pods(name)
    assert ping_ok(p["a"].netns, p["b"].ip)
    nodes = json.loads(netlab("status", "--name", name, "--json", check=True).stdout)["nodes"]
    for node in nodes:
        entry = node["wireguard"]
        assert entry["implementation"] == IMPL.value
        assert (entry["pid"] is not None) == (IMPL is wg.Implementation.USERSPACE)
        (peer,) = entry["peers"]
        other = next(n for n in nodes if n is not node)
        assert peer["node"] == other["name"] and peer["allowedIPs"] == other["podCIDR"]
        assert peer["endpoint"] == f"{other['underlayIP']}:51820"
        assert peer["latestHandshake"] > 0 and peer["rxBytes"] > 0 and peer["txBytes"] > 0
    key = state.lab_dir(name) / "nodes" / "node-1" / "run" / "flannel" / "wgkey"
    assert key.stat().st_mode & 0o777 == 0o400
    shown = netlab("exec", "--name", name, "node-1", "--", "wg", "show", "flannel-wg", "public-key", check=True)
    assert shown.stdout.strip() == nodes[0]["wireguard"]["publicKey"]
    table = netlab("status", "--name", name, check=True).stdout
    assert "latest handshake" in table and IMPL.value in table


@pytest.mark.skipif(IMPL is not wg.Implementation.USERSPACE, reason="wireguard-go runs only without kernel WireGuard")
def test_wireguard_go_is_owned_like_a_container_remade_by_up_and_found_without_state(lab_file):
    name = lab_name("wggo")
    netlab("up", lab_file(two_node_lab(name, "wireguard"), name), check=True)
    daemons = [pid for pid in lab_processes(name) if "wireguard-go" in Path(f"/proc/{pid}/cmdline").read_text()]
    assert len(daemons) == 2
    os.kill(daemons[0], signal.SIGKILL)      # its TUN device goes with it: `up` makes both again
    while procs.start_time(daemons[0]) is not None and not procs.is_zombie(daemons[0]):
        time.sleep(0.05)
    netlab("up", lab_file(two_node_lab(name, "wireguard"), name), check=True)
    p = pods(name)
    assert ping_ok(p["a"].netns, p["b"].ip) and ping_ok(p["b"].netns, p["a"].ip)
    daemons = [pid for pid in lab_processes(name) if "wireguard-go" in Path(f"/proc/{pid}/cmdline").read_text()]
    assert len(daemons) == 2
    state.state_path(name).unlink()
    netlab("down", "--name", name, check=True)
    assert not lab_processes(name) and not lab_namespaces(name)


@needs_wireguard
def test_nodes_coming_and_going_add_and_remove_peers_without_rebuilding_the_others(lab_file):
    name = lab_name("wgnd")
    pods3 = pod_yaml("a", "node-1") + pod_yaml("b", "node-2") + pod_yaml("d", "node-3")
    netlab("up", lab_file(two_node_lab(name, "wireguard"), name), check=True)
    before = {p.name: [c.pid for c in p.containers] for p in state.load(name).pods}
    daemons_before = sorted(lab_processes(name))
    grown = netlab("up", lab_file(lab_yaml(name, backend="wireguard", nodes=3, pods=pods3 + pod_yaml("c", "node-1")),
                                  name), check=True)
    assert "1 namespaces created" not in grown.stdout   # node-3 and pod d: two
    after = {p.name: [c.pid for c in p.containers] for p in state.load(name).pods}
    assert all(after[k] == v for k, v in before.items())
    assert set(daemons_before) <= set(lab_processes(name))
    peers = wg.dump(netlab("exec", "--name", name, "node-1", "--", "wg", "show", "flannel-wg", "dump",
                           check=True).stdout).peers
    assert sorted(p.allowed_ips for p in peers) == ["172.16.1.0/24", "172.16.2.0/24"]
    p = pods(name)
    assert ping_ok(p["a"].netns, p["d"].ip) and ping_ok(p["d"].netns, p["b"].ip)
    netlab("up", lab_file(two_node_lab(name, "wireguard"), name), check=True)
    peers = wg.dump(netlab("exec", "--name", name, "node-1", "--", "wg", "show", "flannel-wg", "dump",
                           check=True).stdout).peers
    assert [p.allowed_ips for p in peers] == ["172.16.1.0/24"]
    assert all(after[k] == v for k, v in {k: v for k, v in before.items()}.items())


@needs_wireguard
def test_rotate_keys_changes_every_key_and_traffic_keeps_flowing(lab_file):
    name = lab_name("wgrk")
    netlab("up", lab_file(two_node_lab(name, "wireguard", extra_spec="  wireguard: {psk: true}\n"), name),
           check=True)
    p = pods(name)
    assert ping_ok(p["a"].netns, p["b"].ip)
    keys = {n["name"]: n["wireguard"]["publicKey"]
            for n in json.loads(netlab("status", "--name", name, "--json", check=True).stdout)["nodes"]}
    ping = procs.popen_in(p["a"].netns, ["ping", "-n", "-c", "25", "-i", "0.2", p["b"].ip],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first = ping.stdout.readline() + ping.stdout.readline()   # the header and the first reply: traffic flows
    assert "bytes from" in first
    started = time.monotonic()
    rotated = netlab("rotate-keys", "--name", name, check=True)
    rotating = time.monotonic() - started
    out, _ = ping.communicate(timeout=60)
    sent, received = map(int, re.search(r"(\d+) packets transmitted, (\d+) received", out).groups())
    # at most the pings sent while the keys changed (each node re-keys in turn; an emulated or
    # loaded machine makes that slower), plus one per node; traffic flows after it (checked below)
    assert sent - received <= int(rotating / 0.2) + 1 + len(keys), out + rotated.stdout
    nodes = json.loads(netlab("status", "--name", name, "--json", check=True).stdout)["nodes"]
    for n in nodes:
        assert n["wireguard"]["publicKey"] != keys[n["name"]]
        (peer,) = n["wireguard"]["peers"]
        assert peer["publicKey"] == next(o["wireguard"]["publicKey"] for o in nodes if o is not n)
    assert ping_ok(p["b"].netns, p["a"].ip)


@pytest.mark.skipif(IMPL is not wg.Implementation.USERSPACE, reason="the kernel has WireGuard here")
def test_neither_implementation_is_refused_before_anything_is_built(lab_file, tmp_path):
    name = lab_name("wgno")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "wg").symlink_to(shutil.which("wg"))    # wireguard-tools, but no wireguard-go
    env = dict(os.environ, PATH=str(bin_dir))
    import sys
    proc = subprocess.run([sys.executable, "-m", "netlab", "up", lab_file(two_node_lab(name, "wireguard"), name)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "wireguard-go" in proc.stderr and "CONFIG_WIREGUARD" in proc.stderr
    assert not lab_namespaces(name) and not state.lab_dir(name).exists()
