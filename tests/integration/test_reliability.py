"""What netlab guarantees: ownership from the kernel, crash safety, locking, isolation, privileges."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from netlab.ops import lab as lab_ops
from netlab.spec import loader
from netlab.kernel import netns, procs
from netlab.ops import state
from tests.support.labs import lab_name, lab_yaml, pod_yaml
from tests.support.kernel import lab_namespaces, lab_processes, netlab, pings

pytestmark = pytest.mark.root


def foreign_netns(name: str) -> None:
    subprocess.run(["ip", "netns", "add", name], check=True)


def drop_foreign(*names: str) -> None:
    for name in names:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def write_lab(tmp_path, text: str):
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    return path


def test_down_without_state_removes_only_marked_namespaces(tmp_path):
    name = lab_name("own")
    path = write_lab(tmp_path, lab_yaml(name) + pod_yaml("a", "node-1")
                     + pod_yaml("b", "node-2", command='["sleep", "300"]'))
    lookalikes = [f"{name}.node-1x", f"{name}.default.zz", f"netlab-{name}"]
    for other in lookalikes:
        foreign_netns(other)
    try:
        netlab("up", str(path), check=True)
        shutil.rmtree(state.lab_dir(name))            # the state file is gone
        result = netlab("down", "--name", name, check=True)
        assert "removed 5 namespaces" in result.stdout and "stopped 2 processes" in result.stdout
        assert "left alone" in result.stdout
        assert sorted(lab_namespaces(name)) == sorted(lookalikes[:2])
        assert os.path.exists(netns.path(lookalikes[2]))
        assert lab_processes(name) == []
    finally:
        drop_foreign(*lookalikes)
        lab_ops.down(name)


def test_down_all_finds_labs_from_their_marks_alone(tmp_path):
    first, second = lab_name("al"), lab_name("al")
    foreign = f"{first}.vpcx"
    foreign_netns(foreign)
    try:
        for lab in (first, second):
            path = tmp_path / f"{lab}.yaml"
            path.write_text(lab_yaml(lab, nodes=1) + pod_yaml("a", "node-1"))
            netlab("up", str(path), check=True)
            shutil.rmtree(state.lab_dir(lab))
        assert {first, second} <= set(lab_ops.all_lab_names())
        # --all acts on every lab on the machine: run it only where nothing else is up
        others = set(lab_ops.all_lab_names()) - {first, second}
        if others:
            for lab in (first, second):
                netlab("down", "--name", lab, check=True)
        else:
            netlab("down", "--all", check=True)
        assert lab_namespaces(first) == [foreign] and lab_namespaces(second) == []
    finally:
        drop_foreign(foreign)
        lab_ops.down(first)
        lab_ops.down(second)


def test_a_foreign_namespace_on_a_planned_name_is_refused_before_anything_changes(tmp_path):
    name = lab_name("fg")
    pods = "".join(pod_yaml(f"p{i}", f"node-{1 + i % 3}") for i in range(10))
    path = write_lab(tmp_path, lab_yaml(name, nodes=3) + pods)
    blocker = f"{name}.default.p7"          # someone else's namespace where pod p7 must go
    foreign_netns(blocker)
    try:
        result = netlab("up", str(path))
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert blocker in result.stderr and "nothing was changed" in result.stderr
        assert lab_namespaces(name) == [blocker] and state.load(name) is None
        assert not state.lab_dir(name).exists()     # not even a lock file is left
    finally:
        drop_foreign(blocker)
        lab_ops.down(name)


def _up_with_fd_limits(path, name, limits):
    """Run `netlab up` under several open-file limits; (limit, result) for each."""
    if shutil.which("prlimit") is None:
        pytest.skip("prlimit (util-linux) is not installed")
    for limit in limits:
        result = subprocess.run(["prlimit", f"--nofile={limit}:{limit}", sys.executable, "-m", "netlab",
                                 "up", "-q", str(path)], capture_output=True, text=True, timeout=120)
        yield limit, result


def test_a_kernel_refusal_in_the_middle_rolls_back_and_says_what_failed(tmp_path):
    """Out of file descriptors on node 6 of 10 (say): a new lab is rolled back completely."""
    name = lab_name("rb")
    pods = "".join(pod_yaml(f"p{i}", f"node-{1 + i % 10}") for i in range(30))
    path = write_lab(tmp_path, lab_yaml(name, nodes=10) + pods)
    failures = successes = 0
    try:
        for limit, result in _up_with_fd_limits(path, name, range(18, 60, 3)):
            if result.returncode == 0:
                successes += 1
                assert len(lab_namespaces(name)) == 41 and state.load(name).status == "ready"
                lab_ops.down(name)
                continue
            failures += 1
            assert result.returncode == 1 and "Traceback" not in result.stderr, (limit, result.stderr)
            assert "Too many open files" in result.stderr and "raise `ulimit -n`" in result.stderr
            assert "rolled back: nothing of lab" in result.stderr
            assert lab_namespaces(name) == [] and lab_processes(name) == [] and state.load(name) is None
        assert failures and successes       # the limits spanned both outcomes
    finally:
        lab_ops.down(name)


def test_a_failure_on_a_running_lab_leaves_a_state_down_removes(tmp_path):
    name = lab_name("pc")
    small = write_lab(tmp_path, lab_yaml(name, nodes=2) + pod_yaml("a", "node-1"))
    big = tmp_path / "big.yaml"
    big.write_text(lab_yaml(name, nodes=10) + "".join(pod_yaml(f"p{i}", f"node-{1 + i % 10}") for i in range(30)))
    try:
        seen_partial = False
        for limit in range(18, 60, 3):
            netlab("up", str(small), check=True)
            (limit, result), = _up_with_fd_limits(big, name, [limit])
            if result.returncode == 0:
                break
            assert result.returncode == 1 and "partly converged" in result.stderr, result.stderr
            assert f"netlab down --name {name}" in result.stderr
            seen_partial = True
            assert state.load(name).status == "failed"
            netlab("down", "--name", name, check=True)
            assert lab_namespaces(name) == [] and lab_processes(name) == [] and state.load(name) is None
        assert seen_partial
    finally:
        lab_ops.down(name)


@pytest.mark.parametrize("then", ["down", "up"])
def test_kill_9_during_up_then_down_or_up_leaves_clean_or_complete(tmp_path, then):
    """SIGKILL `netlab up` at points across its whole run (by how much of the lab exists, not by
    the clock), then `down` must leave nothing, or `up` must finish the lab."""
    name = lab_name("k9")
    pods = "".join(pod_yaml(f"p{i}", f"node-{1 + i % 2}") for i in range(40))
    path = write_lab(tmp_path, lab_yaml(name) + pods)
    labfile = loader.load_file(str(path))
    expected = 1 + 2 + 40
    killed_mid_build = 0
    try:
        # kill when this many namespaces exist; 43 = built, containers starting
        for at in (0, 1, 3, 8, 20, 35, 43):
            proc = subprocess.Popen([sys.executable, "-m", "netlab", "up", str(path), "-q"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 30
            while proc.poll() is None and time.monotonic() < deadline:
                if len(lab_namespaces(name)) >= at and (at == 0 or os.path.exists(state.state_path(name))):
                    break
                time.sleep(0.001)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            if proc.returncode == -signal.SIGKILL and 0 < len(lab_namespaces(name)) < expected:
                killed_mid_build += 1
            if then == "down":
                lab_ops.down(name)
                assert lab_namespaces(name) == [] and lab_processes(name) == []
                assert state.load(name) is None
            else:
                lab_ops.up(labfile)
                assert len(lab_namespaces(name)) == expected
                record = state.load(name)
                assert record.status == "ready"
                alive = record.containers   # served by one responder: the lab's only process besides the inits
                assert len(alive) == 40 and lab_processes(name) == [record.responder.pid]
                assert {c.pid for c in alive} == {record.responder.pid}
                assert pings(f"{name}.default.p0", record.pods[1].ip)
                lab_ops.down(name)
        assert killed_mid_build >= 3     # the kills really landed inside the build
    finally:
        lab_ops.down(name)


def test_up_and_down_of_one_lab_are_serialized(tmp_path):
    name = lab_name("lk")
    path = write_lab(tmp_path, lab_yaml(name) + "".join(pod_yaml(f"p{i}", "node-1") for i in range(20)))
    try:
        procs_ = [subprocess.Popen([sys.executable, "-m", "netlab", "up", str(path), "-q"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
        results = [p.communicate(timeout=120) + (p.returncode,) for p in procs_]
        assert [r[2] for r in results] == [0, 0, 0], results
        created = sorted(int(r[0].split(" namespaces created")[0].rsplit(" ", 1)[1]) for r in results)
        assert created == [0, 0, 23]                  # one built it, the others found it done
        assert len(lab_namespaces(name)) == 23 and len(lab_processes(name)) == 1   # the lab's responder
    finally:
        lab_ops.down(name)


def _answer(netns_name: str, ip_addr: str, port: int = 80) -> str:
    """The built-in responder's answer (the pod's name) to a TCP connection from netns_name."""
    script = ("import socket,time\n"
              "for _ in range(50):\n"
              "  try: s=socket.create_connection((%r,%d),timeout=1); break\n"
              "  except OSError: time.sleep(0.1)\n"
              "print(s.recv(100).decode().strip())\n" % (ip_addr, port))
    proc = procs.popen_in(netns_name, [sys.executable, "-c", script], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True)
    return proc.communicate(timeout=30)[0].strip()


def test_up_and_down_racing_leave_a_whole_lab_or_none(tmp_path):
    name = lab_name("ud")
    path = write_lab(tmp_path, lab_yaml(name) + "".join(pod_yaml(f"p{i}", "node-1") for i in range(30)))
    try:
        for delay in (0.0, 0.2, 0.4):
            up = subprocess.Popen([sys.executable, "-m", "netlab", "up", "-q", str(path)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(delay)
            down = netlab("down", "--name", name)
            out, err = up.communicate(timeout=120)
            assert up.returncode == 0 and down.returncode == 0, (err, down.stderr)
            count = len(lab_namespaces(name))
            if count:     # down ran first and found nothing, then up built it all
                assert count == 33 and state.load(name).status == "ready"
                assert len(lab_processes(name)) == 1   # the lab's responder
            else:         # up finished first, then down removed it all
                assert state.load(name) is None and lab_processes(name) == []
            lab_ops.down(name)
    finally:
        lab_ops.down(name)


def test_two_labs_with_the_same_pod_subnet_are_isolated(make_lab):
    first, second = lab_name("iso"), lab_name("iso")
    make_lab(lab_yaml(first) + pod_yaml("a", "node-1") + pod_yaml("b", "node-2"))
    make_lab(lab_yaml(second) + pod_yaml("a", "node-1") + pod_yaml("c", "node-2"))
    # the same address, 172.16.1.2, is b in the first lab and c in the second: each a meets its own
    assert _answer(f"{first}.default.a", "172.16.1.2") == "b"
    assert _answer(f"{second}.default.a", "172.16.1.2") == "c"
    lab_ops.down(first)
    assert lab_namespaces(first) == [] and lab_processes(first) == []
    assert _answer(f"{second}.default.a", "172.16.1.2") == "c" and len(lab_processes(second)) == 1   # its responder


def test_without_capabilities_up_down_exec_refuse_and_validate_works(tmp_path):
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    name = lab_name("nr")
    path = write_lab(tmp_path, lab_yaml(name) + pod_yaml("a", "node-1"))
    # uid 0 without the two capabilities: what an unprivileged container gives
    unprivileged = ["setpriv", "--bounding-set=-net_admin,-sys_admin", "--inh-caps=-net_admin,-sys_admin",
                    sys.executable, "-m", "netlab"]
    env = dict(os.environ, NETLAB_RUN_DIR=str(tmp_path / "run"))
    run = lambda *a: subprocess.run(unprivileged + list(a), capture_output=True, text=True, env=env, timeout=60)
    for args in (["up", str(path)], ["down", str(path)], ["exec", "a", "--", "true"], ["logs", "a"]):
        result = run(*args)
        assert result.returncode == 1 and "needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)" in result.stderr, result
    assert run("validate", str(path)).returncode == 0
    dry = run("up", "--dry-run", str(path))
    assert dry.returncode == 0 and f"ip netns add {name}.node-1" in dry.stdout
    assert run("status").returncode == 0
    assert lab_namespaces(name) == []


def test_netlab_lifts_its_own_soft_open_files_limit():
    if shutil.which("prlimit") is None:
        pytest.skip("prlimit (util-linux) is not installed")
    out = subprocess.run(["prlimit", "--nofile=20:4096", sys.executable, "-c",
                          "import resource; from netlab.kernel.limits import raise_open_files; raise_open_files();"
                          "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "4096"


def test_bad_lab_names_never_reach_the_disk(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    for bad in (str(victim), "../victim", "UPPER", "a" * 25):
        result = netlab("down", "--name", bad)
        assert result.returncode == 2 and "is not a lab name" in result.stderr
    assert victim.exists()
