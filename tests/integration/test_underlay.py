"""Underlay and fabric on real labs: macvlan, racks behind the VPC router, directRouting, IPIP, ipvlan.

IPIP and ipvlan need kernel modules some machines lack: there, `up` must refuse before
building anything, and the tests that need the feature skip with the probe's answer.
"""
from __future__ import annotations

import itertools
import re
import subprocess
from pathlib import Path

import pytest

from netlab.kernel import procs
from netlab.ops import state
from netlab.ops.record import PodRecord
from netlab.kernel.apply import probe_link_kinds
from netlab.kernel.kernelmods import modprobe_hint, not_loaded
from tests.support.labs import lab_name, lab_yaml, pod_yaml, without_dns
from tests.support.kernel import bridge, ip, lab_namespaces, netlab

pytestmark = pytest.mark.root

TOPOLOGIES = Path(__file__).parents[2] / "topologies"


def topology(stem: str, name: str, **replace: str) -> str:
    """A file of topologies/ under a run-unique lab name (and optional text replacements), without
    cluster DNS: these tests pair the file's own pods."""
    text = re.sub(r"(kind: Lab\nmetadata:\n  name: )\S+", lambda m: m.group(1) + name,
                  without_dns((TOPOLOGIES / f"{stem}.yaml").read_text()))
    for old, new in replace.items():
        text = text.replace(old, new)
    return text


def ping_ttl(src_ns: str, dst_ip: str) -> int | None:
    """The TTL of the echo reply, None when no reply came."""
    proc = procs.popen_in(src_ns, ["ping", "-n", "-c", "1", "-W", "2", dst_ip],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out, _ = proc.communicate()
    found = re.search(r"ttl=(\d+)", out)
    return int(found.group(1)) if proc.returncode == 0 and found else None


def pods_of(name: str) -> dict[str, PodRecord]:
    return {p.name: p for p in state.load(name).pods}


def ttl_matrix(name: str) -> dict[tuple[str, str], int | None]:
    pods = pods_of(name)
    return {(a, b): ping_ttl(pods[a].netns, pods[b].ip) for a, b in itertools.permutations(pods, 2)}


def missing_feature(kind: str) -> str | None:
    unloaded = not_loaded((kind,))
    if unloaded:
        return f"module {kind} is not loaded (netlab loads none): {modprobe_hint(unloaded)}"
    return "this kernel cannot create {} links".format(kind) if probe_link_kinds((kind,)) else None


def assert_nothing_built(name: str) -> None:
    assert lab_namespaces(name) == []
    assert not state.lab_dir(name).exists()


# -- macvlan -------------------------------------------------------------------------

def test_macvlan_pods_are_neighbours_on_the_underlay(make_lab):
    name = lab_name("mv")
    make_lab(topology("macvlan", name))
    # every pair answers, and nothing routes between them: the reply's TTL is untouched
    assert set(ttl_matrix(name).values()) == {64}
    for node in ("node-1", "node-2"):
        node_ns = f"{name}.{node}"
        assert ip(node_ns, "link", "show", "type", "bridge") == []          # no cni0
        assert ip(node_ns, "link", "show", "type", "veth")[0]["ifname"] == "eth0"   # only the uplink
    pod_ns = f"{name}.default.a1"
    eth0 = ip(pod_ns, "link", "show", "eth0")[0]
    assert eth0["linkinfo"]["info_kind"] == "macvlan"
    assert eth0["linkinfo"]["info_data"]["mode"] == "bridge" and eth0["mtu"] == 1500
    assert ip(pod_ns, "link", "show", "type", "veth") == []
    routes = {(r["dst"], r.get("gateway"), r.get("scope")) for r in ip(pod_ns, "route", "show")}
    assert routes == {("172.16.0.0/24", None, "link"), ("172.16.0.0/16", None, "link"),
                      ("default", "172.16.0.1", "global")}


def test_macvlan_node_reaches_its_pods_through_the_shim_not_its_uplink(make_lab):
    name = lab_name("mvs")
    make_lab(topology("macvlan", name))
    node1 = f"{name}.node-1"
    local, remote = pods_of(name)["a1"].ip, pods_of(name)["b1"].ip
    shim = ip(node1, "link", "show", "macvlan-shim")[0]
    assert shim["linkinfo"]["info_kind"] == "macvlan"
    assert [(a["local"], a["prefixlen"]) for a in ip(node1, "addr", "show", "macvlan-shim")[0]["addr_info"]
            if a["family"] == "inet"] == [("172.16.0.1", 32)]
    assert ping_ttl(node1, local) == 64 and ping_ttl(node1, remote) == 64
    # the kernel filter: the parent's own frames never reach its children
    bound = procs.popen_in(node1, ["ping", "-n", "-c", "1", "-W", "1", "-I", "eth0", local],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert bound.wait() != 0
    # pods reach the underlay through their node's shim (their default gateway)
    assert ping_ttl(f"{name}.default.a1", "10.250.0.10") == 64
    assert ping_ttl(f"{name}.default.a1", "10.250.0.11") is not None


@pytest.mark.parametrize("backend", ["vxlan", "macvlan"])
def test_rebuilding_one_pod_again_and_again_keeps_it_reachable(make_lab, tmp_path, backend):
    """The old pod's interfaces are deleted before its namespace goes: no EEXIST/EADDRINUSE on rebuild."""
    name = lab_name("rb")
    texts = [lab_yaml(name, backend=backend) + pod_yaml("a", "node-1", ports=f"[{{containerPort: {port}}}]")
             + pod_yaml("b", "node-2") for port in (80, 81)]
    _, _, path = make_lab(texts[0])
    for round_ in range(4):
        path.write_text(texts[(round_ + 1) % 2])
        netlab("up", str(path), check=True)
        pods = pods_of(name)
        assert ping_ttl(pods["b"].netns, pods["a"].ip) is not None


# -- racks ---------------------------------------------------------------------------

def test_vxlan_crosses_the_vpc_router_between_racks(make_lab):
    name = lab_name("rk")
    make_lab(topology("racks-vxlan", name))
    vpc = f"{name}.vpc"
    addrs = {l["ifname"]: [(a["local"], a["prefixlen"]) for a in l["addr_info"] if a["family"] == "inet"]
             for l in ip(vpc, "addr", "show", "type", "bridge")}
    assert addrs == {"vpc0": [("10.250.0.1", 22)], "vpc-r2": [("10.250.4.1", 22)]}
    node3 = ip(f"{name}.node-3", "route", "show", "10.250.0.0/16")[0]
    assert (node3["gateway"], node3["dev"]) == ("10.250.4.1", "eth0")
    # all pairs reach; the router decrements only the outer header: 62 in and across racks alike
    assert set(ttl_matrix(name).values()) == {62}


def test_host_gw_across_racks_is_refused_before_anything_is_built(tmp_path):
    name = lab_name("hgr")
    path = tmp_path / "lab.yaml"
    path.write_text(topology("racks-vxlan", name, **{"backend: vxlan": "backend: host-gw"}))
    result = netlab("up", str(path))
    assert result.returncode == 2
    assert "host-gw needs L2 adjacency: nodes node-1 and node-3 are in different racks" in result.stderr
    assert "directRouting: true" in result.stderr and "spec.nodes[2].rack" in result.stderr
    assert "Traceback" not in result.stderr
    assert_nothing_built(name)


def test_macvlan_across_racks_is_refused(tmp_path):
    name = lab_name("mvr")
    path = tmp_path / "lab.yaml"
    path.write_text(topology("racks-vxlan", name, **{"backend: vxlan": "backend: macvlan"}))
    result = netlab("up", str(path))
    assert result.returncode == 2 and "macvlan needs one L2 segment" in result.stderr
    assert_nothing_built(name)


def test_direct_routing_host_gw_in_the_rack_vxlan_across(make_lab):
    name = lab_name("dr")
    make_lab(topology("racks-direct-routing", name))
    node1 = f"{name}.node-1"
    routes = {r["dst"]: (r.get("gateway"), r["dev"], "onlink" in r.get("flags", []))
              for r in ip(node1, "route", "show") if r["dst"].startswith("172.16.")}
    assert routes == {
        "172.16.0.0/24": (None, "cni0", False),
        "172.16.1.0/24": ("10.250.0.11", "eth0", False),          # node-2, same rack: host-gw
        "172.16.2.0/24": ("172.16.2.0", "flannel.1", True),       # node-3, rack r2: VXLAN
        "172.16.3.0/24": ("172.16.3.0", "flannel.1", True),       # node-4, rack r2: VXLAN
    }
    neigh = {n["dst"] for n in ip(node1, "neigh", "show", "dev", "flannel.1")}
    assert neigh == {"172.16.2.0", "172.16.3.0"}
    fdb = {f["dst"] for f in bridge(node1, "fdb", "show", "dev", "flannel.1") if "dst" in f}
    assert fdb == {"10.250.4.10", "10.250.4.11"}
    node3 = {r["dst"]: r["dev"] for r in ip(f"{name}.node-3", "route", "show") if r["dst"].startswith("172.16.")}
    assert node3 == {"172.16.0.0/24": "flannel.1", "172.16.1.0/24": "flannel.1",
                     "172.16.2.0/24": "cni0", "172.16.3.0/24": "eth0"}
    assert set(ttl_matrix(name).values()) == {62}


# -- IPIP and ipvlan: refused where the kernel lacks them, built where it has them ----

FEATURE_LABS = [("ipip", "ipip", "CONFIG_NET_IPIP", {}),
                ("ipvlan", "ipvlan", "CONFIG_IPVLAN", {}),
                ("ipvlan", "ipvlan", "CONFIG_IPVLAN", {"mode: l2": "mode: l3"})]


@pytest.mark.parametrize("stem,kind,option,replace", FEATURE_LABS, ids=["ipip", "ipvlan-l2", "ipvlan-l3"])
def test_missing_kernel_feature_is_named_and_nothing_is_built(tmp_path, stem, kind, option, replace):
    if not missing_feature(kind):
        pytest.skip(f"this kernel has {kind}: the refusal cannot be shown here")
    name = lab_name("kf")
    path = tmp_path / "lab.yaml"
    path.write_text(topology(stem, name, **replace))
    result = netlab("up", str(path))
    assert result.returncode == 1
    if not_loaded((kind,)):   # on disk but not loaded: refused without autoloading it
        assert "load them first: " in result.stderr and f"modprobe {kind}" in result.stderr
        assert not_loaded((kind,)) == [kind]    # still not loaded: nothing asked the kernel to
    else:
        assert f"cannot create {kind} ({option}, module {kind}) links" in result.stderr
    assert "nothing was created" in result.stderr and "Traceback" not in result.stderr
    assert_nothing_built(name)


def test_ipip_tunl0_routes_and_reach_across_racks(make_lab):
    reason = missing_feature("ipip")
    if reason:
        pytest.skip(reason)
    name = lab_name("ii")
    make_lab(topology("ipip", name))
    node1 = f"{name}.node-1"
    tunl0 = ip(node1, "link", "show", "tunl0")[0]
    assert tunl0["mtu"] == 1480 and tunl0["linkinfo"]["info_kind"] == "ipip"
    routes = {r["dst"]: (r.get("gateway"), "onlink" in r.get("flags", []))
              for r in ip(node1, "route", "show", "dev", "tunl0")}
    assert routes == {"172.16.1.0/24": ("10.250.0.11", True), "172.16.2.0/24": ("10.250.4.10", True)}
    assert ip(node1, "link", "show", "cni0")[0]["mtu"] == 1480
    assert set(ttl_matrix(name).values()) == {62}


@pytest.mark.parametrize("mode", ["l2", "l3"])
def test_ipvlan_pods_reach_each_other(make_lab, mode):
    reason = missing_feature("ipvlan")
    if reason:
        pytest.skip(reason)
    name = lab_name("iv")
    make_lab(topology("ipvlan", name, **{"mode: l2": f"mode: {mode}"}))
    pod_ns = f"{name}.default.a1"
    eth0 = ip(pod_ns, "link", "show", "eth0")[0]
    assert eth0["linkinfo"]["info_kind"] == "ipvlan"
    assert eth0["address"] == ip(f"{name}.node-1", "link", "show", "eth0")[0]["address"]   # the parent's MAC
    assert ip(f"{name}.node-1", "link", "show", "type", "bridge") == []
    ttls = ttl_matrix(name)
    assert None not in ttls.values()
    if mode == "l2":
        assert set(ttls.values()) == {64}
    assert ping_ttl(f"{name}.node-1", pods_of(name)["a1"].ip) is not None
