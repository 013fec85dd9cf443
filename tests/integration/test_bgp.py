"""backend bgp with real BIRD: Calico's BGP mode in a mesh and with a route reflector.

Every route between nodes is BIRD's (`proto bird`); netlab writes none of them.
"""
from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import time

import pytest

from netlab.kernel import daemons
from netlab.ops import state
from netlab.tools import bgp
from tests.integration.test_underlay import ping_ttl, pods_of, topology
from tests.support.kernel import ip, lab_namespaces, lab_processes, netlab
from tests.support.labs import lab_name

pytestmark = [pytest.mark.root,
              pytest.mark.skipif(shutil.which("bird") is None, reason="bird (Debian package bird2) is not installed")]

CONVERGE_BOUND = 60.0   # not a timing assertion: how long to wait before calling it a failure


def wait_converged(name: str) -> None:
    deadline = time.monotonic() + CONVERGE_BOUND
    while not bgp.converged(state.load(name)):
        if time.monotonic() > deadline:
            pytest.fail(f"lab {name}: BGP did not converge: {bgp.lab_sessions(state.load(name))}")
        time.sleep(0.2)


def wait_for(check, what: str) -> None:
    deadline = time.monotonic() + CONVERGE_BOUND
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting: {what}")
        time.sleep(0.2)


def bird_routes(name: str, node: str) -> dict[str, dict]:
    return {r["dst"]: r for r in ip(f"{name}.{node}", "route", "show") if r.get("protocol") == "bird"}


def underlay_ips(name: str) -> dict[str, str]:
    return {n.name: n.underlay_ip for n in state.load(name).nodes}


def blocks(name: str) -> dict[str, str]:
    return {n.name: n.pod_cidr for n in state.load(name).nodes}


def assert_learned_routes(name: str) -> None:
    """Each node: the other blocks via their own node's underlay IP, dev eth0, proto bird; its own
    block a blackhole (metric 1024) behind cni0."""
    ips, cidrs = underlay_ips(name), blocks(name)
    for node in cidrs:
        learned = bird_routes(name, node)
        assert {dst: (r.get("gateway"), r["dev"]) for dst, r in learned.items()} == \
            {cidrs[o]: (ips[o], "eth0") for o in cidrs if o != node}
        own = [r for r in ip(f"{name}.{node}", "route", "show", cidrs[node]) if r.get("type") == "blackhole"]
        assert len(own) == 1 and own[0]["metric"] == 1024


def test_mesh_routes_every_pod_pair_with_routes_bird_learned(make_lab):
    name = lab_name("bgpm")
    make_lab(topology("bgp-mesh", name))
    wait_converged(name)
    found = bgp.lab_sessions(state.load(name))
    ips = underlay_ips(name)
    for node, sessions in found.items():
        assert sorted(s.peer for s in sessions) == sorted(v for k, v in ips.items() if k != node)
        assert {s.state for s in sessions} == {"Established"}
        assert all(s.routes == 1 for s in sessions)    # each peer announces its block, nothing else
    assert_learned_routes(name)
    pods = pods_of(name)
    ttls = {(a, b): ping_ttl(pods[a].netns, pods[b].ip) for a, b in itertools.permutations(pods, 2)}
    assert set(ttls.values()) == {62}     # routed by both nodes: no tunnel, no extra hop
    # birdc in the node's own /run, as on a Calico node
    shown = netlab("exec", "node-1", "--name", name, "--", "birdc", "show", "protocols", check=True).stdout
    assert shown.count("Established") == 3


def test_route_reflector_clients_peer_only_with_the_reflector(make_lab):
    name = lab_name("bgpr")
    make_lab(topology("bgp-reflectors", name))
    wait_converged(name)
    ips = underlay_ips(name)
    found = bgp.lab_sessions(state.load(name))
    assert sorted(s.peer for s in found["node-1"]) == sorted(ips[n] for n in ("node-2", "node-3", "node-4"))
    for node in ("node-2", "node-3", "node-4"):
        assert [(s.peer, s.state) for s in found[node]] == [(ips["node-1"], "Established")]
    # reflected routes keep the originating node as next hop: traffic goes straight, not via the reflector
    assert_learned_routes(name)
    pods = pods_of(name)
    assert all(ping_ttl(pods[a].netns, pods[b].ip) == 62 for a, b in itertools.permutations(pods, 2))


def test_down_leaves_no_bird_process(make_lab):
    name = lab_name("bgpd")
    make_lab(topology("bgp-mesh", name))
    birds = [rec for n in range(1, 5) for rec in daemons.running(name, f"node-{n}", f"{name}.node-{n}", "bird")]
    assert len(birds) == 4
    assert all(daemons.daemon_env(rec.pid).get("NETLAB_LAB") == name for rec in birds)
    result = netlab("down", "--name", name, check=True)
    assert "stopped" in result.stdout + result.stderr
    assert [rec.pid for rec in birds if os.path.exists(f"/proc/{rec.pid}") and
            daemons.process_state(rec.pid) not in ("Z", None)] == []
    assert lab_processes(name) == [] and lab_namespaces(name) == []


def test_missing_bird_is_named_before_anything_is_built(tmp_path):
    name = lab_name("bgpx")
    path = tmp_path / "lab.yaml"
    path.write_text(topology("bgp-mesh", name))
    env = dict(os.environ, PATH=str(tmp_path))   # nothing on PATH: no bird
    result = subprocess.run([sys.executable, "-m", "netlab", "up", str(path)], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 1
    assert "bird2" in result.stderr and "nothing was created" in result.stderr
    assert lab_namespaces(name) == [] and not state.lab_dir(name).exists()


def test_node_stop_withdraws_its_block_and_start_brings_it_back(make_lab):
    name = lab_name("bgps")
    make_lab(topology("bgp-mesh", name))
    wait_converged(name)
    cidrs, ips = blocks(name), underlay_ips(name)
    others = ("node-1", "node-2", "node-3")
    pods = pods_of(name)
    result = netlab("node", "stop", "node-4", "--name", name, check=True)
    assert "1 daemon(s) stopped" in result.stdout
    assert daemons.running(name, "node-4", f"{name}.node-4", "bird") == []
    # BIRD's shutdown tells the peers: no other node keeps a route to node-4's block
    wait_for(lambda: not any(cidrs["node-4"] in bird_routes(name, o) for o in others), "routes withdrawn")
    assert ping_ttl(pods["a"].netns, pods["d"].ip) is None
    assert all(cidrs[n] in bird_routes(name, "node-1") for n in ("node-2", "node-3"))   # the rest stays
    assert [(l["ifname"], l["operstate"]) for l in ip(f"{name}.vpc", "link", "show", "node-4")] == [("node-4", "DOWN")]
    result = netlab("node", "start", "node-4", "--name", name, check=True)
    assert "1 daemon(s) started" in result.stdout
    wait_for(lambda: all(bird_routes(name, o).get(cidrs["node-4"], {}).get("gateway") == ips["node-4"]
                         for o in others), "routes back")
    wait_converged(name)
    assert ping_ttl(pods["a"].netns, pods["d"].ip) == 62


def test_node_stop_refuses_a_pod(make_lab):
    name = lab_name("bgpn")
    make_lab(topology("bgp-mesh", name))
    result = netlab("node", "stop", "a", "--name", name)
    assert result.returncode == 2 and "is a pod" in result.stderr


def test_racks_route_pods_across_the_vpc_router_with_ebgp(make_lab):
    """host-gw is refused across racks; bgp crosses them: the router's BIRD learns every block."""
    name = lab_name("bgpk")
    make_lab(topology("bgp-racks", name))
    wait_converged(name)
    ips, cidrs = underlay_ips(name), blocks(name)
    found = bgp.lab_sessions(state.load(name))
    assert {s.peer for s in found["node-1"]} == {"10.250.0.1", ips["node-2"]}      # its router and rack-mate
    assert {s.peer for s in found["node-3"]} == {"10.250.4.1", ips["node-4"]}
    assert all(s.state == "Established" for sessions in found.values() for s in sessions)
    expected = {cidrs["node-2"]: ips["node-2"], cidrs["node-3"]: "10.250.0.1", cidrs["node-4"]: "10.250.0.1"}
    # sessions up and routes received is BIRD's view; its kernel protocol writes them an instant later
    wait_for(lambda: {dst: r.get("gateway") for dst, r in bird_routes(name, "node-1").items()} == expected,
             f"node-1's kernel routes {expected}")
    router = {r["dst"]: (r.get("gateway"), r["dev"]) for r in ip(f"{name}.vpc", "route", "show")
              if r.get("protocol") == "bird"}
    assert router == {cidrs["node-1"]: (ips["node-1"], "vpc0"), cidrs["node-2"]: (ips["node-2"], "vpc0"),
                      cidrs["node-3"]: (ips["node-3"], "vpc-r2"), cidrs["node-4"]: (ips["node-4"], "vpc-r2")}
    pods = pods_of(name)
    assert ping_ttl(pods["a"].netns, pods["b"].ip) == 62            # same rack: two nodes
    assert ping_ttl(pods["a"].netns, pods["c"].ip) == 61            # + the router
    assert all(ping_ttl(pods[x].netns, pods[y].ip) is not None for x, y in itertools.permutations(pods, 2))
    birds = daemons.running(name, "vpc", f"{name}.vpc", "bird")
    assert len(birds) == 1
    netlab("down", "--name", name, check=True)
    assert daemons.process_state(birds[0].pid) in (None, "Z")


def test_graceful_restart_keeps_forwarding_while_bird_is_away(make_lab):
    """`birdc graceful restart` (as on a Calico node): BIRD leaves announcing a restart, the peers
    keep its routes as stale, and the node keeps its own (persist); traffic keeps flowing until
    `netlab node start` brings BIRD back and the session is re-established."""
    name = lab_name("bgpg")
    make_lab(topology("bgp-mesh", name))
    wait_converged(name)
    cidrs, ips = blocks(name), underlay_ips(name)
    pods = pods_of(name)
    result = netlab("exec", "node-4", "--name", name, "--", "birdc", "graceful", "restart", check=True, timeout=20)
    assert "Graceful restart requested" in result.stdout
    wait_for(lambda: daemons.running(name, "node-4", f"{name}.node-4", "bird") == [], "bird gone")
    def node4_session_down() -> bool:
        found = [s for s in bgp.sessions(name, "node-1") or [] if s.peer == ips["node-4"]]
        return bool(found) and found[0].state != "Established"
    wait_for(node4_session_down, "node-1 sees node-4's BIRD gone")
    assert all(bird_routes(name, o).get(cidrs["node-4"], {}).get("gateway") == ips["node-4"]
               for o in ("node-1", "node-2", "node-3"))
    assert len(bird_routes(name, "node-4")) == 3          # persist: the node keeps what BIRD wrote
    assert ping_ttl(pods["a"].netns, pods["d"].ip) == 62
    netlab("node", "start", "node-4", "--name", name, check=True)
    wait_converged(name)
    assert ping_ttl(pods["a"].netns, pods["d"].ip) == 62
