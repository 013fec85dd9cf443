#!/usr/bin/env python3
"""netlab's VM test runner: a command (or a pytest selection) in a QEMU VM on Debian 12's own kernel.

    python3 tests/vm/run.py [--kernel 6.1|6.12] [--timeout S] [--mem 6G] [--keep] [--rebuild] -- 'CMD'
    python3 tests/vm/run.py --pytest [--modprobe br_netfilter,ipip] -- -k 'ipip or ipvlan'

See tests/vm/README.md. The image (a debootstrap minbase Debian 12 with the distribution's kernels,
the project's apt packages and a warm /opt/netlab venv) is built once, as root, under
$NETLAB_VM_DIR (default /var/cache/netlab-vm) and rebuilt when what went into it changes. Each run
boots it with a throwaway qcow2 overlay and a job disk holding a clone of this checkout, prints
the command's output and exits with its exit code (124: timeout, 125: the VM itself failed).

Importing this module does nothing: no root, no files, no processes (the unit tests import it).
"""
from __future__ import annotations

import argparse
import codecs
import fcntl
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent.parent
DEFAULT_DIR = "/var/cache/netlab-vm"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"

# The kernels the image carries, by the name --kernel takes: Debian 12's default kernel (6.1,
# bookworm) and the 6.12 kernel Debian 12 also ships (the linux-6.12 source package, from
# bookworm-security; bookworm-updates carries no kernel, bookworm-backports an older 6.12 ~bpo12).
KERNELS = {"6.1": "linux-image-amd64", "6.12": "linux-image-6.12-amd64"}
DEFAULT_KERNEL = "6.1"

# What the runner itself needs in the image, besides the kernels and setup.sh's apt list.
RUNNER_PACKAGES = ["initramfs-tools", "kmod", "iproute2", "procps", "util-linux", "git",
                   "ca-certificates", "python3", "python3-venv", "python3-pip"]
# setup.sh's list, used only if it cannot be read from setup.sh (it is parsed from there, so
# the image follows the checkout's own install step).
FALLBACK_SETUP_PACKAGES = ["iproute2", "iperf3", "iperf", "iputils-ping", "nftables", "iptables",
                           "procps", "util-linux", "sudo", "wrk", "nginx", "python3", "python3-venv",
                           "python3-pip"]
# The drivers the initramfs needs to mount the root disk (the booted system loads the rest).
INITRAMFS_MODULES = ["virtio_pci", "virtio_blk", "ext4", "crc32c_generic"]
VENV = "/opt/netlab"             # setup.sh's NETLAB_VENV default: setup.sh finds it warm
VENV_EXTRAS = ("test",)
IMAGE_SIZE = "8G"                # sparse: the root file system uses ~1.7G of it
JOB_DISK_SIZE = "2G"             # sparse too: the clone, plus what the run writes into it

EXIT_USAGE = 2
EXIT_TIMEOUT = 124
EXIT_VM = 125                    # the VM did not report an exit code (boot failure, panic, ...)

# ---------------------------------------------------------------------------- in-image recipes
# The stub init baked into the image (kernel command line init=): it only mounts the run's job
# disk and hands over to the init found there, so the per-run init can change without a rebuild.
STUB_INIT = r"""#!/bin/sh
# netlab VM runner: PID 1 of the image; hands over to the run's init on the job disk (/dev/vdb)
PATH=/usr/sbin:/usr/bin:/sbin:/bin; export PATH
[ -e /proc/self ] || mount -t proc proc /proc
[ -d /sys/kernel ] || mount -t sysfs sysfs /sys
[ -e /dev/null ] || mount -t devtmpfs devtmpfs /dev
mkdir -p /job
if mount -t ext4 /dev/vdb /job; then exec /bin/bash /job/init; fi
echo "netlab-vm: no job disk on /dev/vdb: powering off" >/dev/console
echo o >/proc/sysrq-trigger
sleep 60
"""

# The run's init, written on the job disk: PID 1 of the VM once the stub hands over. No systemd,
# no udev: it mounts what a Debian boot mounts, loads the drivers of the virtio devices present
# (other modules autoload on demand through the kernel's modprobe helper, as on any Debian
# machine), applies sysctl.d, configures eth0 for qemu's user-mode network, loads the modules
# the run asked for (--modprobe), runs the command with its output in a pipe (as under CI),
# prints the exit-code marker and powers off. Each process costs ~0.1 s under TCG: builtins.
JOB_INIT = r"""#!/bin/bash
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb
nonce=$(</job/nonce)
mounted=$(</proc/self/mounts)
mnt() {  # type options target
  [[ $mounted == *" $3 "* ]] && return 0
  [ -d "$3" ] || mkdir -p "$3"
  mount -t "$1" -o "$2" "$1" "$3"
}
mnt sysfs nosuid,nodev,noexec /sys
mnt devtmpfs mode=0755,nosuid /dev
mnt devpts gid=5,mode=0620,ptmxmode=0666 /dev/pts
mnt tmpfs mode=1777,nosuid,nodev /dev/shm
mnt tmpfs mode=0755,nosuid,nodev /run
mnt tmpfs mode=1777,nosuid,nodev /tmp
mnt cgroup2 nosuid,nodev,noexec /sys/fs/cgroup
mnt bpf mode=0700 /sys/fs/bpf 2>/dev/null
mnt debugfs nosuid,nodev,noexec /sys/kernel/debug 2>/dev/null
# what udev would link (bash's process substitution needs /dev/fd)
for l in fd:/proc/self/fd stdin:/proc/self/fd/0 stdout:/proc/self/fd/1 stderr:/proc/self/fd/2 ptmx:pts/ptmx; do
  [ -e "/dev/${l%%:*}" ] || ln -sfn "${l#*:}" "/dev/${l%%:*}"
done
mkdir -p -m 1777 /run/lock
echo vm >/proc/sys/kernel/hostname
modprobe -qab $(cat /sys/bus/virtio/devices/*/modalias 2>/dev/null) 2>/dev/null
sysctl -q --system >/dev/null 2>&1
# qemu's user-mode network: IPv4 only (the netdev has ipv6=off)
eth=
for d in /sys/class/net/*; do [ "${d##*/}" = lo ] || { eth=${d##*/}; break; }; done
ip link set lo up
[ -n "$eth" ] && printf '%s\n' "link set $eth up" "addr add 10.0.2.15/24 dev $eth" \
  "route add default via 10.0.2.2" | ip -batch -
echo "nameserver 10.0.2.3" >/etc/resolv.conf
mkdir -p /root/project && mount --bind /job/project /root/project
dmesg -n 1
read -r up _ </proc/uptime
echo "@@netlab-vm $nonce begin uptime=$up@@"
rc=0
mods=$(</job/modprobe)
if [ -n "$mods" ]; then
  echo "netlab-vm: modprobe $mods"
  failed=
  for m in $mods; do modprobe "$m" || failed="$failed $m"; done
  if [ -n "$failed" ]; then echo "netlab-vm: modprobe failed for:$failed"; rc=1; fi
fi
if [ $rc = 0 ]; then
  # the command writes into a pipe, as under CI; what it leaves running in the background may
  # hold the pipe open: the reader gets 5 s after the command ends
  mkfifo /run/netlab-vm.out
  cat /run/netlab-vm.out & reader=$!
  (cd /root/project && exec bash -lc "$(</job/cmd)") </dev/null >/run/netlab-vm.out 2>&1 &
  wait $!; rc=$?
  for _ in {1..50}; do kill -0 $reader 2>/dev/null || break; sleep 0.1; done
  kill $reader 2>/dev/null
fi
echo "@@netlab-vm $nonce exit=$rc@@"
sync
echo o >/proc/sysrq-trigger
sleep 60
"""


def chroot_script(kernel_packages: list[str], packages: list[str], venv: str | None) -> str:
    """The build run inside the debootstrap root (chroot), as root, with the network."""
    pkgs = " ".join(sorted(set(packages)))
    kernels = " ".join(kernel_packages)
    mods = " ".join(INITRAMFS_MODULES)
    venv_step = ""
    if venv:
        venv_step = f"""
python3 -m venv {venv}
{venv}/bin/python -m pip install -q --disable-pip-version-check -r /root/netlab-vm-requirements.txt
"""
    return f"""set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get -y -q upgrade
apt-get install -y -q --no-install-recommends initramfs-tools kmod
# a small initramfs: the drivers of the VM's root disk only (the booted system loads the rest)
echo MODULES=list >/etc/initramfs-tools/conf.d/netlab-vm
printf '%s\\n' {mods} >>/etc/initramfs-tools/modules
apt-get install -y -q --no-install-recommends {kernels} {pkgs}
apt-get -q autoclean
rm -rf /var/lib/apt/lists/*
{venv_step}"""


# ---------------------------------------------------------------------------- pure helpers
def setup_apt_packages(setup_sh: str) -> list[str]:
    """The packages of setup.sh's `apt-get install` line (continuations joined); [] if none."""
    text = re.sub(r"\\\n", " ", setup_sh)
    for line in text.splitlines():
        m = re.search(r"\bapt-get\s+install\b(.*)", line)
        if not m:
            continue
        out = []
        for token in shlex.split(m.group(1), comments=True):
            if token[:1] in (">", "<", "|", "&", ";") or token[:2] in ("2>", "1>"):
                break
            if not token.startswith("-"):
                out.append(token)
        if out:
            return out
    return []


def warm_requirements(pyproject: str, extras: tuple[str, ...] = VENV_EXTRAS) -> list[str]:
    """The project's dependencies and extras (not the project), plus its build requirements."""
    data = tomllib.loads(pyproject)
    project = data.get("project", {})
    reqs = list(project.get("dependencies", []))
    for extra in extras:
        reqs += project.get("optional-dependencies", {}).get(extra, [])
    reqs += data.get("build-system", {}).get("requires", [])
    seen: list[str] = []
    for r in reqs:
        if r not in seen:
            seen.append(r)
    return seen


def image_stamp(recipe: dict[str, str]) -> str:
    """The hash of everything that went into the image: a change in any part means a rebuild."""
    blob = json.dumps(recipe, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def choose_accel(kvm_usable: bool, modules: set[str], requested: str = "auto") -> str:
    """kvm only with a hardware KVM (kvm_intel/kvm_amd) that we may open, and not PVM.

    PVM (kvm_pvm, a pagetable-based KVM for specially built guests) cannot run a stock kernel:
    a stock Debian kernel stalls in its instruction emulator. TCG runs the very same kernel."""
    if requested in ("kvm", "tcg"):
        return requested
    if kvm_usable and "kvm_pvm" not in modules and ({"kvm_intel", "kvm_amd"} & modules):
        return "kvm"
    return "tcg"


def host_accel_facts() -> tuple[bool, set[str]]:
    kvm = os.path.exists("/dev/kvm") and os.access("/dev/kvm", os.R_OK | os.W_OK)
    mods = {m for m in ("kvm", "kvm_intel", "kvm_amd", "kvm_pvm") if os.path.isdir(f"/sys/module/{m}")}
    return kvm, mods


KERNEL_CMDLINE = ("console=ttyS0 root=/dev/vda rw init=/sbin/netlab-vm-init quiet loglevel=3 "
                  "panic=1 net.ifnames=0")


def qemu_argv(*, accel: str, kernel: str, initrd: str, overlay: str, job_disk: str,
              mem: str = "6G", cpus: int = 2, cmdline: str = KERNEL_CMDLINE,
              qemu: str = "qemu-system-x86_64") -> list[str]:
    """The qemu command line: serial console on stdout, no display, no reboot (a panic or
    poweroff ends qemu), root disk = overlay (vda), job disk (vdb), user-mode IPv4 network."""
    if accel == "kvm":
        acc = ["-accel", "kvm", "-cpu", "host"]
    elif accel == "tcg":
        acc = ["-accel", "tcg,thread=multi", "-cpu", "max"]
    else:
        raise ValueError(f"accelerator must be kvm or tcg, not {accel!r}")
    return [qemu, "-name", "netlab-vm", "-nodefaults", "-no-user-config", *acc,
            "-smp", str(cpus), "-m", mem, "-display", "none", "-monitor", "none",
            "-serial", "stdio", "-no-reboot",
            "-kernel", kernel, "-initrd", initrd, "-append", cmdline,
            "-drive", f"file={overlay},if=virtio,format=qcow2,cache=unsafe,discard=unmap",
            "-drive", f"file={job_disk},if=virtio,format=raw,cache=unsafe",
            "-netdev", "user,id=net0,ipv6=off", "-device", "virtio-net-pci,netdev=net0,romfile=",
            "-device", "virtio-rng-pci"]


@dataclass
class Console:
    """Reads the VM's serial console: what lies between the run's begin and exit markers (with
    this run's nonce) is the command's output, passed on as it comes (a line not yet finished
    too, up to where a marker could start); the exit marker carries the command's exit code."""
    nonce: str
    state: str = "boot"          # boot -> command -> done
    rc: int | None = None
    uptime: float | None = None  # the guest's uptime when the command started
    _buf: str = field(default="", init=False, repr=False)
    _partial: bool = field(default=False, init=False, repr=False)   # a line is half passed on
    _begin: re.Pattern = field(init=False, repr=False)
    _exit: re.Pattern = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = re.escape(self.nonce)
        self._begin = re.compile(rf"@@netlab-vm {n} begin uptime=([0-9.]+)@@")
        self._exit = re.compile(rf"@@netlab-vm {n} exit=(\d+)@@")

    def feed(self, data: str) -> str:
        """Console text as it arrives: the command output it gives."""
        self._buf += data.replace("\r\n", "\n")
        out = []
        while self.state != "done":
            nl = self._buf.find("\n")
            if nl < 0:
                break
            line, self._buf = self._buf[:nl], self._buf[nl + 1:]
            out.append(self._line(line.rstrip("\r")))
        if self.state == "command" and self._buf:
            cut = self._buf.find("@")
            safe = self._buf if cut < 0 else self._buf[:cut]
            if safe.endswith("\r"):
                safe = safe[:-1]           # maybe the start of a CRLF
            if safe:
                out.append(safe)
                self._partial = True
            self._buf = self._buf[len(safe):]
        return "".join(out)

    def _line(self, line: str) -> str:
        if self.state == "boot":
            m = self._begin.search(line)
            if m:
                self.state = "command"
                self.uptime = float(m.group(1))
            return ""
        m = self._exit.search(line)
        partial, self._partial = self._partial, False
        if m:
            self.state = "done"
            self.rc = int(m.group(1))
            return line[:m.start()] + "\n" if m.start() or partial else ""
        return line + "\n"


def pytest_command(args: list[str], exact: bool = False) -> str:
    """The in-VM shell command for --pytest: the README's `bash setup.sh test ARGS`.

    Unless exact, setup.sh's apt step is skipped (the image has setup.sh's packages: its list is
    part of the image's stamp) and pip builds the project with the warm venv's setuptools rather
    than in an isolated build environment (~60 s less under TCG)."""
    env = "" if exact else "NETLAB_SKIP_APT=1 PIP_NO_BUILD_ISOLATION=0 "
    return f"{env}bash setup.sh test {' '.join(shlex.quote(a) for a in args)}".rstrip()


def parse_modprobe(values: list[str]) -> list[str]:
    mods: list[str] = []
    for v in values:
        for m in re.split(r"[,\s]+", v):
            if m and m not in mods:
                if not re.fullmatch(r"[A-Za-z0-9_-]+", m):
                    raise ValueError(f"not a module name: {m!r}")
                mods.append(m)
    return mods


def version_key(name: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def pick_kernel(files: list[str], series: str) -> str | None:
    """The newest vmlinuz-<series>.* of a /boot listing ('6.1' does not match 6.12)."""
    prefix = f"vmlinuz-{series}."
    found = sorted((f for f in files if f.startswith(prefix)), key=version_key)
    return found[-1] if found else None


# ---------------------------------------------------------------------------- host side
def log(msg: str) -> None:
    print(f"netlab-vm: {msg}", file=sys.stderr, flush=True)


class Failure(Exception):
    pass


def sh(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, **kw)


def ensure_host_tools() -> None:
    need = {"qemu-system-x86_64": "qemu-system-x86", "qemu-img": "qemu-utils",
            "mkfs.ext4": "e2fsprogs", "git": "git"}
    missing = sorted({pkg for tool, pkg in need.items() if not shutil.which(tool)})
    if missing:
        install_host_packages(missing)


def install_host_packages(pkgs: list[str]) -> None:
    if os.geteuid() != 0:
        raise Failure(f"missing on this machine: {' '.join(pkgs)} (apt-get install them, or run as root)")
    log(f"installing {' '.join(pkgs)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env, stdout=subprocess.DEVNULL)
    r = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *pkgs],
                       env=env, stdout=subprocess.DEVNULL)
    if r.returncode != 0:
        raise Failure(f"apt-get install {' '.join(pkgs)} failed")


def git(*args: str, cwd: Path = PROJECT, **kw) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, **kw).stdout


def project_file(name: str, worktree: bool) -> str:
    """A file of the checkout under test: as in HEAD, or as in the work tree with --worktree."""
    if worktree:
        p = PROJECT / name
        return p.read_text() if p.exists() else ""
    try:
        return git("show", f"HEAD:{name}")
    except subprocess.CalledProcessError:
        return ""


def host_sources() -> dict[str, str]:
    """The apt sources for the image: this machine's (its mirror, its proxy), with
    bookworm-security added when they lack it (the 6.12 kernel comes from there)."""
    out: dict[str, str] = {}
    src = Path("/etc/apt/sources.list.d/debian.sources")
    if src.exists():
        out["debian.sources"] = src.read_text()
    else:
        out["debian.sources"] = (f"Types: deb\nURIs: {DEFAULT_MIRROR}\nSuites: {SUITE} {SUITE}-updates\n"
                                 "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    if f"{SUITE}-security" not in "".join(out.values()):
        out["netlab-vm-security.sources"] = (
            f"Types: deb\nURIs: {DEFAULT_SECURITY_MIRROR}\nSuites: {SUITE}-security\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    return out


def mirror_of(sources: str) -> str:
    for m in re.finditer(r"^URIs:\s*(\S+)", sources, re.M):
        if "security" not in m.group(1):
            return m.group(1)
    return DEFAULT_MIRROR


@dataclass
class Recipe:
    kernel_packages: list[str]
    packages: list[str]
    requirements: list[str]
    sources: dict[str, str]
    script: str

    def stamp(self) -> str:
        return image_stamp({"version": "1", "suite": SUITE, "script": self.script, "stub": STUB_INIT,
                            "requirements": "\n".join(self.requirements), "sources": json.dumps(self.sources),
                            "cmdline": KERNEL_CMDLINE, "size": IMAGE_SIZE})


def make_recipe(worktree: bool) -> Recipe:
    setup_pkgs = setup_apt_packages(project_file("setup.sh", worktree)) or FALLBACK_SETUP_PACKAGES
    packages = sorted(set(RUNNER_PACKAGES) | set(setup_pkgs))
    pyproject = project_file("pyproject.toml", worktree)
    reqs = warm_requirements(pyproject) if pyproject else []
    kernel_packages = [KERNELS[k] for k in sorted(KERNELS)]
    script = chroot_script(kernel_packages, packages, VENV if reqs else None)
    return Recipe(kernel_packages, packages, reqs, host_sources(), script)


class ImageCache:
    """$NETLAB_VM_DIR:
      images/STAMP/   one image per stamp: base.img, the kernels and initrds, manifest.json
                      (written last); images/STAMP.lock is held shared by each run of it
      build.lock      one builder at a time; build.log is the latest build's log
      minbase-*.tar, apt-archives/, pip-cache/   debootstrap's root and downloads, for rebuilds
      runs/PID.*/     one directory per running VM; runs/slot.N: VM slots; last-console.log
    Checkouts whose stamps differ (another branch's pyproject.toml) get images of their own: the
    KEEP_IMAGES most recently used are kept, an image in use is never removed."""

    KEEP_IMAGES = 2

    def __init__(self, root: Path):
        self.root = root
        self.images = root / "images"
        self.runs = root / "runs"

    def image_dir(self, stamp: str) -> Path:
        return self.images / stamp

    def manifest(self, stamp: str) -> dict | None:
        d = self.image_dir(stamp)
        try:
            m = json.loads((d / "manifest.json").read_text())
        except (OSError, ValueError):
            return None
        files = [m.get("image", "")] + [f for k in m.get("kernels", {}).values() for f in (k["vmlinuz"], k["initrd"])]
        return m if m.get("stamp") == stamp and all(f and (d / f).is_file() for f in files) else None

    def _open_lock(self, path: Path) -> int:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)

    def collect_garbage(self, keep: str) -> None:
        """Images beyond the KEEP_IMAGES most recently used, unless a run holds them."""
        dirs = sorted((d for d in self.images.iterdir() if d.is_dir() and d.name != keep),
                      key=lambda d: d.stat().st_mtime, reverse=True)
        for d in dirs[self.KEEP_IMAGES - 1:]:
            fd = self._open_lock(self.images / f"{d.name}.lock")
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue                                  # in use
            try:
                shutil.rmtree(d, ignore_errors=True)
            finally:
                os.close(fd)

    def remove_stale_runs(self) -> None:
        if not self.runs.is_dir():
            return
        for d in self.runs.iterdir():
            pid = d.name.split(".")[0]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                shutil.rmtree(d, ignore_errors=True)

    # -- the build (under the build lock and the image's exclusive lock)
    def build(self, recipe: Recipe, stamp: str) -> dict:
        if os.geteuid() != 0:
            raise Failure("building the VM image needs root (debootstrap, chroot, mounts)")
        if not shutil.which("debootstrap"):
            install_host_packages(["debootstrap"])
        t0 = time.monotonic()
        log(f"building the VM image {stamp} in {self.images} (a few minutes, once; log: {self.root}/build.log)")
        work = self.images / f"{stamp}.build"
        shutil.rmtree(work, ignore_errors=True)
        rootfs = work / "root"
        rootfs.mkdir(parents=True)
        logf = open(self.root / "build.log", "w")
        try:
            self._minbase(rootfs, recipe, logf)
            log(f"  minbase root ready ({time.monotonic() - t0:.0f}s)")
            self._prepare(rootfs, recipe)
            self._chroot(rootfs, recipe, logf)
            log(f"  packages, kernels and venv installed ({time.monotonic() - t0:.0f}s)")
            manifest = self._finish(rootfs, work, stamp)
        except subprocess.CalledProcessError as e:
            logf.flush()
            tail = (self.root / "build.log").read_text(errors="replace").splitlines()[-25:]
            raise Failure(f"image build failed ({e.cmd[0]} exit {e.returncode}); build.log ends:\n"
                          + "\n".join(tail)) from None
        finally:
            logf.close()
            shutil.rmtree(work, ignore_errors=True)
        kinfo = ", ".join(f"{k}: {v['version']}" for k, v in manifest["kernels"].items())
        log(f"image ready in {time.monotonic() - t0:.0f}s ({kinfo})")
        return manifest

    def _minbase(self, rootfs: Path, recipe: Recipe, logf) -> None:
        """A debootstrap minbase root, kept as a tarball so that rebuilds skip debootstrap."""
        mirror = mirror_of(recipe.sources.get("debian.sources", ""))
        tar = self.root / f"minbase-{SUITE}-{hashlib.sha256(mirror.encode()).hexdigest()[:8]}.tar"
        if not tar.exists():
            for old in self.root.glob("minbase-*.tar"):
                old.unlink()
            tmp = rootfs.parent / "minbase"
            sh(["debootstrap", "--variant=minbase", SUITE, str(tmp), mirror], stdout=logf, stderr=logf)
            sh(["tar", "-C", str(tmp), "--numeric-owner", "-cf", f"{tar}.part", "."], stdout=logf, stderr=logf)
            os.replace(f"{tar}.part", tar)
            shutil.rmtree(tmp)
        sh(["tar", "-C", str(rootfs), "--numeric-owner", "-xpf", str(tar)], stdout=logf, stderr=logf)

    def _prepare(self, rootfs: Path, recipe: Recipe) -> None:
        """This workplace's view of the registries (a proxy with its own CA), no daemons."""
        etc = rootfs / "etc"
        cas = Path("/usr/local/share/ca-certificates")
        if cas.is_dir():
            shutil.copytree(cas, rootfs / "usr/local/share/ca-certificates", dirs_exist_ok=True)
        bundle = Path("/etc/ssl/certs/ca-certificates.crt")
        if bundle.exists():
            (etc / "ssl/certs").mkdir(parents=True, exist_ok=True)
            shutil.copy(bundle, etc / "ssl/certs/ca-certificates.crt")
        if Path("/etc/pip.conf").exists():
            shutil.copy("/etc/pip.conf", etc / "pip.conf")
        (etc / "apt/sources.list").unlink(missing_ok=True)
        for name, text in recipe.sources.items():
            (etc / "apt/sources.list.d" / name).write_text(text)
        (etc / "resolv.conf").unlink(missing_ok=True)
        shutil.copy("/etc/resolv.conf", etc / "resolv.conf")
        rc = rootfs / "usr/sbin/policy-rc.d"
        rc.write_text("#!/bin/sh\n# netlab VM image build: no daemon starts\nexit 101\n")
        rc.chmod(0o755)
        (rootfs / "root/netlab-vm-requirements.txt").write_text("\n".join(recipe.requirements) + "\n")
        (rootfs / "root/netlab-vm-build.sh").write_text(recipe.script)

    def _chroot(self, rootfs: Path, recipe: Recipe, logf) -> None:
        """The build script in the chroot, in a mount namespace of its own (nothing stays mounted)."""
        apt_cache = self.root / "apt-archives"
        pip_cache = self.root / "pip-cache"
        (apt_cache / "partial").mkdir(parents=True, exist_ok=True)
        pip_cache.mkdir(exist_ok=True)
        r = shlex.quote(str(rootfs))
        mounts = (f"mount --bind {r} {r} && mount -t proc proc {r}/proc && mount --rbind /sys {r}/sys && "
                  f"mount --rbind /dev {r}/dev && mount -t tmpfs tmpfs {r}/run && mount -t tmpfs tmpfs {r}/tmp && "
                  f"mount --bind {shlex.quote(str(apt_cache))} {r}/var/cache/apt/archives && "
                  f"mkdir -p {r}/root/.cache/pip && mount --bind {shlex.quote(str(pip_cache))} {r}/root/.cache/pip && "
                  f"exec chroot {r} /usr/bin/env -i HOME=/root LANG=C.UTF-8 "
                  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "
                  "bash /root/netlab-vm-build.sh")
        sh(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", mounts], stdout=logf, stderr=logf)

    def _finish(self, rootfs: Path, work: Path, stamp: str) -> dict:
        for f in ("usr/sbin/policy-rc.d", "root/netlab-vm-build.sh", "root/netlab-vm-requirements.txt"):
            (rootfs / f).unlink(missing_ok=True)
        shutil.rmtree(rootfs / "root/.cache", ignore_errors=True)
        init = rootfs / "sbin/netlab-vm-init"
        init.write_text(STUB_INIT)
        init.chmod(0o755)
        etc = rootfs / "etc"
        (etc / "hostname").write_text("vm\n")
        (etc / "hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\tvm\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        (etc / "resolv.conf").write_text("nameserver 10.0.2.3\n")
        (etc / "fstab").write_text("/dev/vda / ext4 rw 0 1\n")
        boot = sorted(os.listdir(rootfs / "boot"))
        kernels = {}
        for series in KERNELS:
            vmlinuz = pick_kernel(boot, series)
            if not vmlinuz:
                raise Failure(f"no {series} kernel in the image's /boot: {boot}")
            version = vmlinuz[len("vmlinuz-"):]
            initrd = f"initrd.img-{version}"
            if initrd not in boot:
                raise Failure(f"no {initrd} in the image's /boot")
            shutil.copy(rootfs / "boot" / vmlinuz, work / vmlinuz)
            shutil.copy(rootfs / "boot" / initrd, work / initrd)
            kernels[series] = {"version": version, "vmlinuz": vmlinuz, "initrd": initrd}
        image = "base.img"
        sh(["mkfs.ext4", "-q", "-F", "-L", "netlab-vm", "-d", str(rootfs), str(work / image), IMAGE_SIZE],
           stdout=subprocess.DEVNULL)
        shutil.rmtree(rootfs)
        # in place at once, the manifest in it: an interrupted build leaves no image that looks whole
        manifest = {"stamp": stamp, "image": image, "kernels": kernels, "built": time.strftime("%Y-%m-%dT%H:%M:%S")}
        (work / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        final = self.image_dir(stamp)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(work, final)
        return manifest

    def ready(self, recipe: Recipe, rebuild: bool) -> tuple[int, Path, dict]:
        """This recipe's image, built if needed. Returns holding the image's lock shared (runs
        share an image; only its rebuild waits for them); other images' runs do not wait."""
        stamp = recipe.stamp()
        fd = self._open_lock(self.images / f"{stamp}.lock")
        while True:
            if not rebuild:
                fcntl.flock(fd, fcntl.LOCK_SH)
                m = self.manifest(stamp)
                if m:
                    self._used(stamp)
                    return fd, self.image_dir(stamp), m
                fcntl.flock(fd, fcntl.LOCK_UN)
            bfd = self._open_lock(self.root / "build.lock")
            try:
                fcntl.flock(bfd, fcntl.LOCK_EX)               # one builder at a time
                fcntl.flock(fd, fcntl.LOCK_EX)                # no run uses this image
                if rebuild or not self.manifest(stamp):
                    self.build(recipe, stamp)
                rebuild = False
                self.collect_garbage(keep=stamp)
                fcntl.flock(fd, fcntl.LOCK_SH)
            finally:
                os.close(bfd)

    def _used(self, stamp: str) -> None:
        os.utime(self.image_dir(stamp))
        self.remove_stale_runs()


def take_slot(runs: Path, slots: int) -> int:
    """One of `slots` VM slots (a lock file each), waiting for one if all are taken: TCG VMs
    beyond the host's CPUs only slow each other down (and time-bound tests fail)."""
    runs.mkdir(parents=True, exist_ok=True)
    fds = [os.open(runs / f"slot.{i}", os.O_RDWR | os.O_CREAT, 0o644) for i in range(slots)]
    for fd in fds:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue
        for other in fds:
            if other != fd:
                os.close(other)
        return fd
    log(f"all {slots} VM slot(s) in use (NETLAB_VM_SLOTS): waiting for one")
    fd = fds[os.getpid() % slots]
    fcntl.flock(fd, fcntl.LOCK_EX)
    for other in fds:
        if other != fd:
            os.close(other)
    return fd


def prepare_job(job: Path, *, worktree: bool, command: str, nonce: str, modules: list[str]) -> None:
    """The job disk's content: a clone of the checkout (HEAD; with --worktree its uncommitted
    changes and untracked files too), the command, the nonce, the modules, the init."""
    job.mkdir(parents=True)
    proj = job / "project"
    sh(["git", "clone", "-q", "--no-hardlinks", str(PROJECT), str(proj)], stdout=subprocess.DEVNULL)
    if worktree:
        diff = subprocess.run(["git", "diff", "HEAD", "--binary"], cwd=PROJECT, check=True,
                              capture_output=True).stdout
        if diff:
            subprocess.run(["git", "apply", "--whitespace=nowarn", "-"], cwd=proj, input=diff, check=True)
        untracked = git("ls-files", "--others", "--exclude-standard", "-z").split("\0")
        for rel in filter(None, untracked):
            dst = proj / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT / rel, dst, follow_symlinks=False)
    (job / "cmd").write_text(command + "\n")
    (job / "nonce").write_text(nonce + "\n")
    (job / "modprobe").write_text(" ".join(modules) + "\n")
    (job / "init").write_text(JOB_INIT)
    (job / "init").chmod(0o755)


def _pdeathsig() -> None:
    """In qemu's child before exec: qemu dies with the runner, even if the runner is SIGKILLed."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)     # PR_SET_PDEATHSIG


class Interrupted(Exception):
    def __init__(self, signum: int):
        self.signum = signum


@dataclass
class Outcome:
    rc: int
    boot: float | None
    total: float
    started: bool


def boot_and_run(argv: list[str], run_dir: Path, nonce: str, timeout: float, echo_console: bool) -> Outcome:
    console = Console(nonce)
    t0 = time.monotonic()
    boot: float | None = None
    timed_out = threading.Event()
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    with open(run_dir / "console.log", "wb") as clog, open(run_dir / "qemu.err", "wb") as qerr:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=qerr,
                                start_new_session=True, preexec_fn=_pdeathsig)

        def expire() -> None:
            timed_out.set()
            proc.kill()
        timer = threading.Timer(timeout, expire)
        timer.daemon = True
        timer.start()
        try:
            while console.state != "done":
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                clog.write(chunk)
                clog.flush()
                text = decoder.decode(chunk)
                if echo_console and console.state == "boot":
                    sys.stderr.write(text.replace("\r\n", "\n"))
                was = console.state
                sys.stdout.write(console.feed(text))
                sys.stdout.flush()
                if was == "boot" and console.state != "boot":
                    boot = time.monotonic() - t0
            # the exit marker is out: the VM is powering off; give it a moment, then end it
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    total = time.monotonic() - t0
    if console.rc is not None:
        return Outcome(console.rc, boot, total, True)
    if timed_out.is_set():
        log(f"timed out after {timeout:.0f}s: VM killed")
        return Outcome(EXIT_TIMEOUT, boot, total, boot is not None)
    tail = (run_dir / "console.log").read_bytes().decode("utf-8", "replace").splitlines()[-40:]
    err = (run_dir / "qemu.err").read_text(errors="replace").strip()
    log(f"the VM ended without the command's exit code (qemu exit {proc.returncode}); console tail:\n"
        + "\n".join(tail) + (f"\nqemu: {err}" if err else ""))
    return Outcome(EXIT_VM, boot, total, boot is not None)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="tests/vm/run.py",
        description="Run a command (or a pytest selection) in a QEMU VM on Debian 12's own kernel, "
                    "in a clone of this checkout. Exit code: the command's; 124 timeout; 125 VM failure.",
        epilog="examples:  tests/vm/run.py -- 'uname -r'   |   "
               "tests/vm/run.py --pytest --modprobe br_netfilter -- -k 'ipip or ipvlan' -ra")
    p.add_argument("--kernel", choices=sorted(KERNELS, key=version_key), default=DEFAULT_KERNEL,
                   help=f"Debian 12 kernel to boot (default {DEFAULT_KERNEL})")
    p.add_argument("--pytest", action="store_true",
                   help="the arguments are pytest's: run `bash setup.sh test ARGS` in the VM "
                        "(see --exact)")
    p.add_argument("--exact", action="store_true",
                   help="with --pytest: setup.sh exactly as the README runs it (its apt step, pip's "
                        "isolated build)")
    p.add_argument("--modprobe", action="append", default=[], metavar="MODS",
                   help="load these kernel modules (comma-separated) before the command: an "
                        "install step, as kubeadm's prerequisites load br_netfilter")
    p.add_argument("--timeout", type=float, default=float(os.environ.get("NETLAB_VM_TIMEOUT", 1800)),
                   help="seconds before the VM is killed (exit 124; default 1800)")
    p.add_argument("--mem", default=os.environ.get("NETLAB_VM_MEM", "6G"), help="guest memory (default 6G)")
    p.add_argument("--cpus", type=int, default=min(2, os.cpu_count() or 1), help="guest CPUs")
    p.add_argument("--accel", choices=["auto", "kvm", "tcg"], default=os.environ.get("NETLAB_VM_ACCEL", "auto"),
                   help="auto: kvm with a hardware KVM, else tcg")
    p.add_argument("--worktree", action="store_true",
                   help="test the work tree as it is (uncommitted changes, untracked files), not HEAD")
    p.add_argument("--keep", action="store_true", help="keep the run directory (overlay, job disk, console log)")
    p.add_argument("--rebuild", action="store_true", help="rebuild the image first")
    p.add_argument("--build-only", action="store_true", help="build the image if needed, run nothing")
    p.add_argument("--console", action="store_true", help="also show the boot console on stderr")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD (a shell command) or -- PYTEST-ARGS")
    a = p.parse_args(argv)
    if a.command[:1] == ["--"]:
        a.command = a.command[1:]
    if not a.command and not a.build_only and not a.pytest:
        p.error("no command: tests/vm/run.py [options] -- 'CMD'")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        modules = parse_modprobe(a.modprobe)
    except ValueError as e:
        log(str(e))
        return EXIT_USAGE
    command = pytest_command(a.command, exact=a.exact) if a.pytest else " ".join(a.command)
    cache = ImageCache(Path(os.environ.get("NETLAB_VM_DIR") or DEFAULT_DIR))

    def on_signal(signum, _frame):
        raise Interrupted(signum)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    run_dir: Path | None = None
    t_start = time.monotonic()
    try:
        ensure_host_tools()
        recipe = make_recipe(a.worktree)
        _fd, image_dir, manifest = cache.ready(recipe, a.rebuild)
        if a.build_only:
            log(f"image ready: {image_dir}")
            return 0
        kernel = manifest["kernels"][a.kernel]
        cache.runs.mkdir(exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}.", dir=cache.runs))
        nonce = secrets.token_hex(8)
        prepare_job(run_dir / "job", worktree=a.worktree, command=command, nonce=nonce, modules=modules)
        sh(["mkfs.ext4", "-q", "-F", "-L", "netlab-job", "-d", str(run_dir / "job"), str(run_dir / "job.img"),
            JOB_DISK_SIZE], stdout=subprocess.DEVNULL)
        shutil.rmtree(run_dir / "job")
        sh(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image_dir / manifest["image"]), "-F", "raw",
            str(run_dir / "root.qcow2")])
        kvm_usable, mods = host_accel_facts()
        accel = choose_accel(kvm_usable, mods, a.accel)
        slots = int(os.environ.get("NETLAB_VM_SLOTS") or max(1, (os.cpu_count() or 1) // max(1, a.cpus)))
        t_wait = time.monotonic()
        take_slot(cache.runs, slots)
        waited = time.monotonic() - t_wait
        while True:
            argv = qemu_argv(accel=accel, kernel=str(image_dir / kernel["vmlinuz"]),
                             initrd=str(image_dir / kernel["initrd"]), overlay=str(run_dir / "root.qcow2"),
                             job_disk=str(run_dir / "job.img"), mem=a.mem, cpus=a.cpus)
            out = boot_and_run(argv, run_dir, nonce, a.timeout, a.console)
            if out.rc == EXIT_VM and not out.started and accel == "kvm" and a.accel == "auto":
                log("KVM did not boot the stock kernel: falling back to TCG")
                accel = "tcg"
                (run_dir / "root.qcow2").unlink()
                sh(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image_dir / manifest["image"]),
                    "-F", "raw", str(run_dir / "root.qcow2")])
                continue
            break
        boot = f"{out.boot:.1f}s" if out.boot is not None else "-"
        log(f"summary: accel={accel} kernel={kernel['version']} boot={boot} vm={out.total:.1f}s "
            f"total={time.monotonic() - t_start:.1f}s" + (f" (waited {waited:.0f}s for a slot)" if waited > 1 else "")
            + f" exit={out.rc}")
        return out.rc
    except Failure as e:
        log(str(e))
        return EXIT_VM
    except subprocess.CalledProcessError as e:
        log(f"`{' '.join(map(str, e.cmd))}` failed (exit {e.returncode})")
        return EXIT_VM
    except Interrupted as e:
        log(f"interrupted by signal {e.signum}: VM stopped")
        return 128 + e.signum
    finally:
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        if run_dir is not None:
            if (run_dir / "console.log").exists():
                shutil.copy(run_dir / "console.log", cache.root / "last-console.log")
            if a.keep:
                log(f"run directory kept: {run_dir}")
            else:
                shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
