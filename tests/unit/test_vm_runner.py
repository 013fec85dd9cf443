"""The VM runner's pure parts (tests/vm/run.py): no VM, no root, no files outside tmp_path."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.vm import run as vm

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- accelerator
@pytest.mark.parametrize("kvm, modules, requested, want", [
    (True, {"kvm", "kvm_intel"}, "auto", "kvm"),
    (True, {"kvm", "kvm_amd"}, "auto", "kvm"),
    (True, {"kvm", "kvm_pvm"}, "auto", "tcg"),               # PVM cannot run a stock kernel
    (True, {"kvm", "kvm_intel", "kvm_pvm"}, "auto", "tcg"),
    (False, {"kvm", "kvm_intel"}, "auto", "tcg"),            # no /dev/kvm we may open
    (True, {"kvm"}, "auto", "tcg"),                          # no hardware KVM module
    (False, set(), "kvm", "kvm"),                            # asked for: as asked
    (True, {"kvm", "kvm_intel"}, "tcg", "tcg"),
])
def test_accelerator_from_facts(kvm, modules, requested, want):
    assert vm.choose_accel(kvm, modules, requested) == want


# ---------------------------------------------------------------- qemu command line
def argv(accel="tcg", **kw):
    return vm.qemu_argv(accel=accel, kernel="/c/vmlinuz", initrd="/c/initrd", overlay="/r/root.qcow2",
                        job_disk="/r/job.img", **kw)


def value(args, flag):
    return [args[i + 1] for i, a in enumerate(args) if a == flag]


def test_tcg_is_multithreaded_on_the_max_cpu():
    a = argv("tcg")
    assert value(a, "-accel") == ["tcg,thread=multi"] and value(a, "-cpu") == ["max"]
    assert "-enable-kvm" not in a


def test_kvm_uses_the_host_cpu():
    a = argv("kvm")
    assert value(a, "-accel") == ["kvm"] and value(a, "-cpu") == ["host"]


def test_unknown_accelerator_is_refused():
    with pytest.raises(ValueError):
        argv("hvf")


def test_disks_network_console_and_no_reboot():
    a = argv(mem="2G", cpus=3)
    drives = value(a, "-drive")
    assert drives[0].startswith("file=/r/root.qcow2,if=virtio,format=qcow2")    # vda: the overlay
    assert drives[1].startswith("file=/r/job.img,if=virtio,format=raw")         # vdb: the job disk
    assert value(a, "-netdev") == ["user,id=net0,ipv6=off"]       # IPv4 only: no RA-learnt routes
    assert value(a, "-serial") == ["stdio"] and value(a, "-display") == ["none"]
    assert "-no-reboot" in a and value(a, "-m") == ["2G"] and value(a, "-smp") == ["3"]
    assert value(a, "-kernel") == ["/c/vmlinuz"] and value(a, "-initrd") == ["/c/initrd"]
    cmdline = value(a, "-append")[0]
    assert "console=ttyS0" in cmdline and "init=/sbin/netlab-vm-init" in cmdline and "root=/dev/vda" in cmdline


# ---------------------------------------------------------------- console markers
def test_console_passes_only_the_command_output_and_reads_the_exit_code():
    c = vm.Console("abc123")
    assert c.feed("[    1.0] booting\r\n") == ""
    assert c.feed("@@netlab-vm abc123 begin uptime=12.50@@\r\n") == ""
    assert c.state == "command" and c.uptime == 12.5
    assert c.feed("hello\r\n\r\n") == "hello\n\n"
    assert c.feed("@@netlab-vm abc123 exit=3@@\r\nafter\r\n") == ""
    assert c.state == "done" and c.rc == 3
    assert c.feed("more\n") == ""


def test_console_streams_an_unfinished_line_up_to_a_possible_marker():
    c = vm.Console("n")
    c.feed("@@netlab-vm n begin uptime=3@@\r\n....")
    assert c.feed("..") == ".."                       # pytest's progress dots, as they come
    assert c.feed("\r") == ""                         # maybe the start of CRLF: held
    assert c.feed("\n[ 50%]\r\n") == "\n[ 50%]\n"
    assert c.feed("tail@@netl") == "tail"             # held from the @ on
    assert c.feed("ab-vm n exit=0@@\r\n") == "\n"
    assert c.rc == 0


def test_console_markers_split_across_reads():
    c = vm.Console("n")
    for piece in ("@@netlab-", "vm n begin upt", "ime=1.5@@\r", "\nout\r\n@@netlab-vm n ex", "it=7@@\r\n"):
        c.feed(piece)
    assert c.rc == 7 and c.uptime == 1.5


def test_console_ignores_markers_of_another_nonce():
    c = vm.Console("abc123")
    c.feed("@@netlab-vm zzz begin uptime=1.0@@\n")
    assert c.state == "boot"
    c.feed("@@netlab-vm abc123 begin uptime=1.0@@\n")
    assert c.feed("@@netlab-vm zzz exit=0@@\n") == "@@netlab-vm zzz exit=0@@\n"   # output, not the end
    assert c.rc is None


def test_console_exit_marker_after_output_without_newline():
    c = vm.Console("n")
    c.feed("@@netlab-vm n begin uptime=3@@\n")
    assert c.feed("no newline@@netlab-vm n exit=0@@\n") == "no newline\n"
    assert c.rc == 0


# ---------------------------------------------------------------- image recipe and stamp
def test_setup_sh_packages_are_read_from_the_install_line():
    text = ("apt-get update -qq\n"
            "    apt-get install -y -qq --no-install-recommends iproute2 iperf3 \\\n"
            "      sudo wrk nginx python3 >/dev/null\n")
    assert vm.setup_apt_packages(text) == ["iproute2", "iperf3", "sudo", "wrk", "nginx", "python3"]
    assert vm.setup_apt_packages("echo nothing\n") == []


def test_the_project_setup_sh_packages_are_all_in_the_image():
    pkgs = vm.setup_apt_packages((ROOT / "setup.sh").read_text())
    assert {"iproute2", "nftables", "python3-venv"} <= set(pkgs)
    script = vm.chroot_script(["linux-image-amd64"], pkgs, "/opt/netlab")
    assert all(p in script.split() for p in pkgs)


def test_warm_requirements_are_dependencies_extras_and_build_requirements():
    pyproject = """
[build-system]
requires = ["setuptools>=68"]
[project]
name = "x"
dependencies = ["click>=8", "pyyaml"]
[project.optional-dependencies]
test = ["pytest>=8", "click>=8"]
plot = ["matplotlib"]
"""
    assert vm.warm_requirements(pyproject, ("test",)) == ["click>=8", "pyyaml", "pytest>=8", "setuptools>=68"]


def recipe(**over):
    base = {"version": "1", "script": "apt-get install a b", "stub": "#!/bin/sh", "requirements": "pytest"}
    base.update(over)
    return base


def test_stamp_is_stable_and_changes_with_any_ingredient():
    assert vm.image_stamp(recipe()) == vm.image_stamp(dict(reversed(list(recipe().items()))))
    stamps = {vm.image_stamp(recipe()), vm.image_stamp(recipe(script="apt-get install a b c")),
              vm.image_stamp(recipe(stub="#!/bin/bash")), vm.image_stamp(recipe(requirements="pytest>=9"))}
    assert len(stamps) == 4


def test_the_chroot_script_installs_both_kernels_and_the_warm_venv():
    script = vm.chroot_script([vm.KERNELS["6.1"], vm.KERNELS["6.12"]], ["iproute2"], "/opt/netlab")
    assert "linux-image-amd64 linux-image-6.12-amd64" in script
    assert "MODULES=list" in script and script.index("MODULES=list") < script.index("linux-image-amd64")
    assert "python3 -m venv /opt/netlab" in script
    assert "venv" not in vm.chroot_script(["linux-image-amd64"], ["iproute2"], None)


def test_kernel_series_do_not_match_each_other():
    boot = ["vmlinuz-6.1.0-9-amd64", "vmlinuz-6.1.0-57-amd64", "vmlinuz-6.12.118+deb12-amd64", "config-6.1.0-57-amd64"]
    assert vm.pick_kernel(boot, "6.1") == "vmlinuz-6.1.0-57-amd64"
    assert vm.pick_kernel(boot, "6.12") == "vmlinuz-6.12.118+deb12-amd64"
    assert vm.pick_kernel(boot, "5.10") is None


def test_mirror_is_the_sources_debian_uri():
    src = "Types: deb\nURIs: http://mirror.example/debian-security\n\nURIs: http://mirror.example/debian\n"
    assert vm.mirror_of(src) == "http://mirror.example/debian"
    assert vm.mirror_of("") == vm.DEFAULT_MIRROR


# ---------------------------------------------------------------- commands
def test_pytest_is_the_readme_command():
    cmd = vm.pytest_command(["-k", "ipip or ipvlan", "-ra", "tests/integration/test_rtnl.py"])
    assert cmd.endswith("bash setup.sh test -k 'ipip or ipvlan' -ra tests/integration/test_rtnl.py")
    assert "NETLAB_SKIP_APT=1" in cmd                     # the image has setup.sh's packages
    assert vm.pytest_command(["-ra"], exact=True) == "bash setup.sh test -ra"
    assert vm.pytest_command([], exact=True) == "bash setup.sh test"


def test_modprobe_lists():
    assert vm.parse_modprobe(["br_netfilter,ipip", "ipip vxlan", ""]) == ["br_netfilter", "ipip", "vxlan"]
    with pytest.raises(ValueError):
        vm.parse_modprobe(["ipip;reboot"])


def test_the_runner_imports_without_side_effects_and_shows_help():
    proc = subprocess.run([sys.executable, str(ROOT / "tests/vm/run.py"), "--help"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "--kernel" in proc.stdout and "--modprobe" in proc.stdout


def test_old_images_are_removed_unless_recent_or_in_use(tmp_path):
    import fcntl
    import os
    cache = vm.ImageCache(tmp_path)
    for age, stamp in enumerate(["new", "recent", "old", "busy"]):
        (cache.images / stamp).mkdir(parents=True)
        os.utime(cache.images / stamp, (1000 - age * 100, 1000 - age * 100))
    busy = os.open(cache.images / "busy.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(busy, fcntl.LOCK_SH)                      # a run of that image
    try:
        cache.collect_garbage(keep="new")
    finally:
        os.close(busy)
    assert sorted(d.name for d in cache.images.iterdir() if d.is_dir()) == ["busy", "new", "recent"]


def test_a_free_vm_slot_is_taken_without_waiting(tmp_path):
    import fcntl
    import os
    first = vm.take_slot(tmp_path, 2)
    second = vm.take_slot(tmp_path, 2)                   # the other slot, at once
    try:
        for fd in (first, second):
            with pytest.raises(BlockingIOError):          # both held
                probe = os.open(os.readlink(f"/proc/self/fd/{fd}"), os.O_RDWR)
                try:
                    fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                finally:
                    os.close(probe)
    finally:
        os.close(first)
        os.close(second)
