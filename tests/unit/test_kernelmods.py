"""Module presence is read from /sys/module and the module tree, never by loading anything."""
from __future__ import annotations

from netlab.kernel import kernelmods
from netlab.kernel.kernelmods import ModuleState


def tree(tmp_path, builtin: list[str], dep: list[str]):
    sys_module = tmp_path / "sys"
    (sys_module / "bridge").mkdir(parents=True)
    mods = tmp_path / "lib"
    mods.mkdir()
    (mods / "modules.builtin").write_text("".join(f"{p}\n" for p in builtin))
    (mods / "modules.dep").write_text("".join(f"{p}: \n" for p in dep))
    return {"sys_module": sys_module, "tree": mods}


def test_loaded_builtin_loadable_unknown(tmp_path):
    where = tree(tmp_path, ["kernel/drivers/net/veth.ko"],
                 ["kernel/net/ipv4/ipip.ko.xz", "kernel/drivers/net/ipvlan/ipvlan.ko", "kernel/net/bridge/br_netfilter.ko"])
    assert kernelmods.module_state("bridge", **where) is ModuleState.LOADED
    assert kernelmods.module_state("veth", **where) is ModuleState.BUILTIN
    assert kernelmods.module_state("ipip", **where) is ModuleState.LOADABLE
    assert kernelmods.module_state("br-netfilter", **where) is ModuleState.LOADABLE   # dash = underscore
    assert kernelmods.module_state("wireguard", **where) is ModuleState.UNKNOWN
    assert kernelmods.not_loaded(["bridge", "veth", "ipip", "ipvlan", "wireguard"], **where) == ["ipip", "ipvlan"]


def test_no_module_tree_means_nothing_can_be_autoloaded(tmp_path):
    where = {"sys_module": tmp_path / "none", "tree": tmp_path / "missing"}
    assert kernelmods.module_state("ipip", **where) is ModuleState.UNKNOWN
    assert kernelmods.not_loaded(["ipip"], **where) == []


def test_the_hint_keeps_tunl0_out_of_the_host():
    from netlab.kernel.kernelmods import modprobe_hint
    assert modprobe_hint(["ipvlan"]) == "modprobe ipvlan"
    assert modprobe_hint(["ipip"]).startswith("sysctl -w net.core.fb_tunnels_only_for_init_net=2 && modprobe ipip")
