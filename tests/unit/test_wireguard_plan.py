"""The wireguard backend, pure: flannel's device, MTU, route and peers; peers out of the
fingerprint; `wg show dump` parsing; the implementation chosen without loading a module."""
from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from netlab.core import ipam, plan
from netlab.core.steps import Addr, Route, WgDevice, WgPeer
from netlab.errors import KernelFeatureMissing
from netlab.kernel import wireguard as wg
from netlab.kernel.kernelmods import ModuleState
from netlab.spec import loader
from tests.support.labs import lab_yaml


def plan_of(text: str) -> plan.Plan:
    lab = loader.load_text(text, "f")
    return plan.build(lab, ipam.allocate(lab))


def node_steps(p: plan.Plan, node: str, kind: type) -> list:
    return [s for s in p.find(plan.Role.NODE, node).steps if isinstance(s, kind)]


def test_each_node_gets_flannel_wg_with_mtu_minus_80_its_0_address_and_the_pod_network_route():
    p = plan_of(lab_yaml("x", backend="wireguard", nodes=3))
    assert p.mtu == 1420
    (dev,) = node_steps(p, "node-2", WgDevice)
    assert (dev.name, dev.mtu, dev.port, dev.key_file) == ("flannel-wg", 1420, 51820, "/run/flannel/wgkey")
    assert Addr("flannel-wg", IPv4Interface("172.16.1.0/32")) in node_steps(p, "node-2", Addr)
    assert Route(IPv4Network("172.16.0.0/16"), "flannel-wg") in node_steps(p, "node-2", Route)


def test_one_peer_per_remote_node_with_its_pod_block_and_underlay_endpoint():
    p = plan_of(lab_yaml("x", backend="wireguard", nodes=3,
                         extra_spec="  wireguard: {listenPort: 51999, persistentKeepalive: 25, psk: true}\n"))
    peers = node_steps(p, "node-1", WgPeer)
    assert [(s.node, s.allowed_ips, s.endpoint, s.port, s.keepalive, s.psk_file) for s in peers] == [
        ("node-2", IPv4Network("172.16.1.0/24"), IPv4Address("10.250.0.11"), 51999, 25, "/run/flannel/wgpsk"),
        ("node-3", IPv4Network("172.16.2.0/24"), IPv4Address("10.250.0.12"), 51999, 25, "/run/flannel/wgpsk")]
    assert "persistent-keepalive 25 preshared-key /run/flannel/wgpsk" in peers[0].describe()


def test_a_new_node_changes_no_other_namespace_fingerprint():
    """Peers are converged in place: adding a node must not rebuild the others (nor their pods)."""
    two = plan_of(lab_yaml("x", backend="wireguard", nodes=2))
    three = plan_of(lab_yaml("x", backend="wireguard", nodes=3))
    before = {ns.name: ns.fingerprint for ns in two.namespaces}
    after = {ns.name: ns.fingerprint for ns in three.namespaces}
    assert all(after[name] == fp for name, fp in before.items())
    assert node_steps(two, "node-1", WgPeer) != node_steps(three, "node-1", WgPeer)


def test_vxlan_plan_fingerprints_still_change_with_the_node_set():
    """The exclusion is for converged steps only: vxlan's fdb entries still rebuild (the test can fail)."""
    two = plan_of(lab_yaml("x", backend="vxlan", nodes=2))
    three = plan_of(lab_yaml("x", backend="vxlan", nodes=3))
    assert two.find(plan.Role.NODE, "node-1").fingerprint != three.find(plan.Role.NODE, "node-1").fingerprint


def test_wg_show_dump_is_parsed():
    text = ("PRIV\tPUB1\t51820\toff\n"
            "PUB2\t(none)\t10.250.0.11:51820\t172.16.1.0/24\t1700000000\t348\t404\toff\n"
            "PUB3\tPSK\t10.250.0.12:51820\t172.16.2.0/24\t0\t0\t0\t25\n")
    dev = wg.dump(text)
    assert (dev.public_key, dev.listen_port) == ("PUB1", 51820)
    assert dev.peers[0] == wg.PeerState("PUB2", "10.250.0.11:51820", "172.16.1.0/24", 1700000000, 348, 404)
    assert (dev.peers[1].preshared, dev.peers[1].keepalive) == (True, 25)


@pytest.mark.parametrize("state,probe_missing,expect", [
    (ModuleState.BUILTIN, [], wg.Implementation.KERNEL),
    (ModuleState.LOADED, [], wg.Implementation.KERNEL),
    (ModuleState.UNKNOWN, ["wireguard"], wg.Implementation.USERSPACE),
    (ModuleState.LOADABLE, None, wg.Implementation.USERSPACE),   # never probed: probing would autoload it
])
def test_the_implementation_is_chosen_without_loading_a_module(monkeypatch, state, probe_missing, expect):
    monkeypatch.setattr(wg, "module_state", lambda name: state)
    monkeypatch.setattr(wg.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(wg.os.path, "exists", lambda path: True)
    monkeypatch.delenv(wg.FORCE_ENV, raising=False)

    def probe(kinds):
        assert probe_missing is not None, "a loadable module must not be probed"
        return probe_missing
    implementation, note = wg.choose(probe)
    assert implementation is expect
    if state is ModuleState.LOADABLE:
        assert "modprobe wireguard" in note


def test_neither_implementation_names_the_package_and_the_kernel_option(monkeypatch):
    monkeypatch.setattr(wg, "module_state", lambda name: ModuleState.UNKNOWN)
    monkeypatch.setattr(wg.shutil, "which", lambda name: "/usr/bin/wg" if name == "wg" else None)
    monkeypatch.delenv(wg.FORCE_ENV, raising=False)
    with pytest.raises(KernelFeatureMissing) as err:
        wg.choose(lambda kinds: ["wireguard"])
    assert "CONFIG_WIREGUARD" in str(err.value) and "apt-get install wireguard-go" in str(err.value)
    monkeypatch.setattr(wg.shutil, "which", lambda name: None)
    with pytest.raises(KernelFeatureMissing) as err:
        wg.choose(lambda kinds: [])
    assert "wireguard-tools" in str(err.value)
