"""SIGTERM and SIGHUP are Ctrl-C for up and down: a new lab rolls back, a second signal waits."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from netlab.ops import state
from tests.support.kernel import lab_inits, lab_namespaces, lab_processes
from tests.support.labs import lab_name, lab_yaml, pod_yaml

pytestmark = pytest.mark.root


@pytest.mark.parametrize("signals, held", [((signal.SIGTERM,), False), ((signal.SIGHUP,), False),
                                           ((signal.SIGTERM, signal.SIGINT), False),
                                           ((signal.SIGINT,), True),    # inherited blocked (a CI service)
                                           ((signal.SIGTERM, signal.SIGINT), "ignored")])   # a background job
def test_a_stop_signal_during_up_rolls_a_new_lab_back(tmp_path, signals, held):
    name = lab_name("sig")
    path = tmp_path / "lab.yaml"
    path.write_text(lab_yaml(name) + "".join(pod_yaml(f"p{i}", f"node-{1 + i % 2}") for i in range(40)))
    proc = subprocess.Popen([sys.executable, "-m", "netlab", "up", "-q", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_ignored if held == "ignored" else _held(signals) if held else None)
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and len(lab_namespaces(name)) < 10 and time.monotonic() < deadline:
            time.sleep(0.002)
        assert proc.poll() is None, "up finished before the signal: the lab is too small for this machine"
        for sig in signals:          # a second one (Ctrl-C) must not interrupt the rollback
            proc.send_signal(sig)
            time.sleep(0.01)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        subprocess.run([sys.executable, "-m", "netlab", "down", "--name", name], capture_output=True)
    assert proc.returncode == 130 and "rolled back" in err, err
    assert lab_namespaces(name) == [] and lab_processes(name) == [] and lab_inits(name) == []
    assert state.load(name) is None


def _held(signals):
    """A preexec_fn: the signals at their default action (pytest may run as a background job,
    which ignores SIGINT) but blocked, as a CI service may start netlab."""
    def hold() -> None:
        for sig in signals:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    return hold


def _ignored() -> None:
    """SIGINT ignored, as in a job started in the background (`cmd &`): netlab leaves it ignored,
    through its exit too (a Python handler would be reset to the killing default as it exits)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
