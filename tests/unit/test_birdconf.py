"""bird.conf as Calico's templates shape it, in BIRD 2 syntax: golden files per node of the bgp
topologies (NETLAB_UPDATE_GOLDEN=1 rewrites them), the session rules, and BIRD's own parser."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from netlab.core import ipam
from netlab.core.backends import bgp
from netlab.core.birdconf import passive_towards
from netlab.spec.loader import load_file
from ipaddress import IPv4Address

ROOT = Path(__file__).parents[2]
GOLDEN = ROOT / "tests" / "golden" / "bird"
LABS = ("bgp-mesh", "bgp-reflectors", "bgp-racks")


def configs(lab_name: str) -> dict[str, str]:
    """Each node's bird.conf, and the VPC router's ("vpc") when the lab has racks."""
    lab = load_file(str(ROOT / "topologies" / f"{lab_name}.yaml"))
    alloc = ipam.allocate(lab)
    out = {node.name: dict(bgp.node_daemons(lab, alloc, node)[0].files)[bgp.BIRD_CONF]
           for node in alloc.nodes.values()}
    for daemon in bgp.router_daemons(lab, alloc):
        out["vpc"] = dict(daemon.files)[bgp.BIRD_CONF]
    return out


def peers_of(lab_name: str):
    lab = load_file(str(ROOT / "topologies" / f"{lab_name}.yaml"))
    alloc = ipam.allocate(lab)
    return {node.name: bgp.peers(lab, alloc, node) for node in alloc.nodes.values()}


@pytest.mark.parametrize("lab_name", LABS)
def test_bird_conf_is_as_the_golden_file_says(lab_name):
    for node, text in configs(lab_name).items():
        expected = GOLDEN / f"{lab_name}.{node}.conf"
        if os.environ.get("NETLAB_UPDATE_GOLDEN"):
            expected.write_text(text)
        assert text == expected.read_text(), f"{lab_name} {node}"


def test_mesh_has_one_session_per_pair_and_one_connecting_side():
    peers = peers_of("bgp-mesh")
    ip = {f"node-{n}": IPv4Address(f"10.250.0.{9 + n}") for n in range(1, 5)}
    for node, sessions in peers.items():
        assert sorted(p.ip for p in sessions) == sorted(v for k, v in ip.items() if k != node)
        for peer in sessions:
            other = next(k for k, v in ip.items() if v == peer.ip)
            back = next(p for p in peers[other] if p.ip == ip[node])
            assert peer.passive != back.passive       # exactly one side waits
            assert peer.protocol == "Mesh_" + str(peer.ip).replace(".", "_")
            assert not peer.rr_client


def test_passive_side_is_calicos_string_order():
    # Calico's template compares the addresses as strings: "10.250.0.9" sorts after "10.250.0.10"
    assert passive_towards(IPv4Address("10.250.0.10"), IPv4Address("10.250.0.9"))
    assert not passive_towards(IPv4Address("10.250.0.9"), IPv4Address("10.250.0.10"))


def test_route_reflector_peers_with_all_and_clients_only_with_it():
    peers = peers_of("bgp-reflectors")
    reflector = peers["node-1"]
    assert len(reflector) == 3 and all(p.rr_client and not p.passive for p in reflector)
    for node in ("node-2", "node-3", "node-4"):
        assert [(p.ip, p.rr_client) for p in peers[node]] == [(IPv4Address("10.250.0.10"), False)]
    assert "rr cluster id 244.0.0.1;" in configs("bgp-reflectors")["node-1"]


def test_only_the_nodes_block_is_announced_and_router_id_is_the_node_ip():
    text = configs("bgp-mesh")["node-2"]
    assert "router id 10.250.0.11;" in text
    assert "if ( net = 172.16.1.0/24 ) then { accept; }" in text
    assert "172.16.0.0/24" not in text and "172.16.2.0/24" not in text


@pytest.mark.skipif(shutil.which("bird") is None, reason="bird (Debian package bird2) is not installed")
@pytest.mark.parametrize("lab_name", LABS)
def test_bird_itself_parses_every_generated_config(lab_name, tmp_path):
    for node, text in configs(lab_name).items():
        conf = tmp_path / f"{node}.conf"
        conf.write_text(text)
        done = subprocess.run(["bird", "-p", "-c", str(conf)], capture_output=True, text=True)
        assert done.returncode == 0, f"{node}: {done.stderr}"


def test_racks_are_one_as_each_and_peer_with_the_router_over_ebgp():
    peers = peers_of("bgp-racks")
    conf = configs("bgp-racks")
    assert [(p.ip, p.asn) for p in peers["node-1"]] == [(IPv4Address("10.250.0.1"), 64514),
                                                         (IPv4Address("10.250.0.11"), 64512)]
    assert [(p.ip, p.asn) for p in peers["node-3"]] == [(IPv4Address("10.250.4.1"), 64514),
                                                         (IPv4Address("10.250.4.11"), 64513)]
    assert "local as 64513;" in conf["node-4"] and "local as 64514;" in conf["vpc"]
    # the router speaks to each rack from its own address there
    assert "neighbor 10.250.4.10 as 64513;\n  source address 10.250.4.1;" in conf["vpc"]
