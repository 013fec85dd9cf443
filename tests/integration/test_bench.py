"""`netlab bench` on real namespaces: a short smoke (no timing thresholds), and nothing left behind —
after a normal run, after --keep and reuse, on Ctrl-C and SIGTERM, and when a tool is missing."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from netlab.kernel import netns
from tests.support.labs import RUN_TAG, lab_name, lab_yaml
from tests.support.kernel import lab_namespaces, lab_processes, netlab

pytestmark = pytest.mark.root
TESTS = {"TCP_STREAM": "Gbit/s", "TCP_RR": "trans/s", "TCP_CRR": "trans/s"}
needs_tools = pytest.mark.skipif(not all(shutil.which(t) for t in ("iperf3", "iperf", "wrk", "nginx")),
                                 reason="needs iperf3, iperf, wrk and nginx (apt-get install iperf3 iperf wrk nginx)")


def bench_labs(prefix: str, backends=("vxlan", "host-gw")) -> list[str]:
    return [f"{prefix}-{b}" for b in (*backends, "veth")]


def assert_nothing_left(prefix: str) -> None:
    namespaces = [n for n in netns.listed() if n.startswith(f"{prefix}-")]
    processes = {lab: lab_processes(lab) for lab in bench_labs(prefix) if lab_processes(lab)}
    state = [p.name for p in netlab_run_dir().iterdir() if p.name.startswith(prefix)] \
        if netlab_run_dir().exists() else []
    assert (namespaces, processes, state) == ([], {}, [])


def netlab_run_dir():
    from netlab.ops import state
    return state.run_dir()


@needs_tools
def test_bench_smoke_json_per_contract_and_nothing_left():
    prefix = lab_name("bn")
    proc = netlab("bench", "--backends", "vxlan", "--duration", "1", "--parallel", "2", "--json",
                  "--lab-prefix", prefix, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    rows = data["results"]
    got = {(r["backend"], r["path"], r["test"]) for r in rows}
    assert got == {(b, p, t) for t in TESTS
                   for b, p in (("veth", "baseline"), ("vxlan", "same-node"), ("vxlan", "cross-node"))}
    for row in rows:
        assert row["unit"] == TESTS[row["test"]]
        assert row["value"] > 0 and row["ratio"] > 0, row
        assert row["cpu_seconds"] > 0 and row["client_cpu_seconds"] > 0 and row["server_cpu_seconds"] > 0, row
        assert row["parallel"] == 2
    assert all(r["ratio"] == 1.0 for r in rows if r["path"] == "baseline")
    assert data["settings"]["parallel"] == 2 and data["machine"]["cpus"] >= 1
    assert_nothing_left(prefix)


@needs_tools
def test_keep_leaves_the_labs_up_and_the_next_run_reuses_then_removes_them():
    prefix = lab_name("bk")
    try:
        first = netlab("bench", "--backends", "host-gw", "--tests", "rr", "--duration", "1", "--keep",
                       "--lab-prefix", prefix, timeout=300)
        assert first.returncode == 0, first.stderr
        assert "TCP_RR" in first.stdout and "host-gw" in first.stdout   # the table, for people
        assert os.path.exists(netns.path(f"{prefix}-host-gw.bench.client"))
        assert os.path.exists(netns.path(f"{prefix}-veth.client"))
        tw_reuse = netlab("exec", "--name", f"{prefix}-host-gw", "bench/client", "--", "cat",
                          "/proc/sys/net/ipv4/tcp_tw_reuse", check=True).stdout.strip()
        assert tw_reuse == "1"      # the client's own namespace; the root namespace is checked by the suite
        second = netlab("bench", "--backends", "host-gw", "--tests", "stream", "--duration", "1",
                        "--lab-prefix", prefix, timeout=300)
        assert second.returncode == 0, second.stderr
        assert f"reusing lab {prefix}-host-gw" in second.stderr
        assert_nothing_left(prefix)
    finally:
        for lab in bench_labs(prefix, ("host-gw",)):
            netlab("down", "--name", lab)


def test_a_different_lab_with_the_bench_name_is_left_alone(make_lab):
    from tests.support.labs import lab_yaml, pod_yaml
    prefix = lab_name("bd")
    make_lab(lab_yaml(f"{prefix}-vxlan") + pod_yaml("mine", "node-1"))
    proc = netlab("bench", "--backends", "vxlan", "--tests", "stream", "--duration", "1",
                  "--lab-prefix", prefix, timeout=300)
    assert proc.returncode == 1
    assert f"lab '{prefix}-vxlan' is up but is not netlab bench's lab" in proc.stderr
    assert os.path.exists(netns.path(f"{prefix}-vxlan.default.mine"))
    assert not [n for n in netns.listed() if n.startswith(f"{prefix}-veth")]


def test_a_missing_tool_is_named_before_anything_is_built(tmp_path):
    prefix = lab_name("bm")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("iperf3", "iperf"):     # no wrk, no nginx on this PATH
        if shutil.which(tool):
            (bindir / tool).symlink_to(shutil.which(tool))
    proc = subprocess.run([sys.executable, "-m", "netlab", "bench", "--lab-prefix", prefix],
                          capture_output=True, text=True, timeout=60, env=dict(os.environ, PATH=str(bindir)))
    assert proc.returncode == 1
    assert "nginx, wrk" in proc.stderr and "apt-get install" in proc.stderr and "nothing was built" in proc.stderr
    assert_nothing_left(prefix)


@needs_tools
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_mid_measurement_leaves_nothing(tmp_path, sig):
    prefix = lab_name("bi")
    out, err = open(tmp_path / "out", "w"), open(tmp_path / "err", "w")
    # a measurement long enough that the signal lands while it runs, even on a loaded machine where
    # finding the lab's processes takes seconds (the baseline before it runs the same length)
    bench = subprocess.Popen([sys.executable, "-m", "netlab", "bench", "--backends", "vxlan", "--tests", "stream",
                              "--duration", "20", "--lab-prefix", prefix], stdout=out, stderr=err,
                             preexec_fn=_default_sigint)
    try:
        deadline = time.monotonic() + 120
        while not lab_processes(f"{prefix}-vxlan"):     # past the baseline: a tool runs in the vxlan lab
            assert bench.poll() is None, (tmp_path / "err").read_text()
            assert time.monotonic() < deadline, "the bench never reached the vxlan lab"
            time.sleep(0.1)
        bench.send_signal(sig)
        assert bench.wait(timeout=60) == 130
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
        out.close()
        err.close()
        for lab in bench_labs(prefix, ("vxlan",)):
            if any(n.startswith(f"{lab}.") for n in netns.listed()):
                netlab("down", "--name", lab)
    assert "interrupted" in (tmp_path / "err").read_text()
    assert_nothing_left(prefix)


def _default_sigint() -> None:
    """A runner started in the background (bash: `cmd &`) ignores SIGINT, one started by a CI
    service may block it; the bench would inherit either and never see the signal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_bench_refuses_to_remove_a_lab_that_is_not_its_baseline(tmp_path):
    prefix = f"{RUN_TAG}nb"
    name = f"{prefix}-veth"
    path = tmp_path / "lab.yaml"
    path.write_text(lab_yaml(name, nodes=1))
    netlab("up", str(path), check=True)
    try:
        proc = netlab("bench", "--lab-prefix", prefix, "--backends", "vxlan", "--tests", "stream", "--duration", "1")
        assert proc.returncode == 1 and "is not a bench baseline" in proc.stderr, proc
        assert sorted(lab_namespaces(name)) == [f"{name}.node-1", f"{name}.vpc"]
    finally:
        netlab("down", "--name", name, check=True)
