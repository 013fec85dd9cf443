"""What a container must give netlab: when /run/netns cannot take bind mounts, the error says so."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from netlab.ops import state
from tests.support.labs import lab_name, lab_yaml, pod_yaml
from tests.support.kernel import lab_namespaces

pytestmark = pytest.mark.root


def test_a_read_only_run_is_refused_with_what_the_container_needs(tmp_path):
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    name = lab_name("ro")
    path = tmp_path / "lab.yaml"
    path.write_text(lab_yaml(name) + pod_yaml("a", "node-1"))
    # A private mount namespace (unshare's default propagation) with a read-only /run: the host's
    # mounts are untouched, and netlab meets what a container without a writable /run gives it.
    script = 'mount -t tmpfs -o ro tmpfs /run && exec "$@"'
    result = subprocess.run(["unshare", "--mount", "sh", "-c", script, "sh", sys.executable, "-m", "netlab",
                             "up", str(path)], capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert result.returncode == 1, result.stderr
    for needed in ("/run/netns", "CAP_SYS_ADMIN", "CAP_NET_ADMIN", "--privileged", "Read-only file system"):
        assert needed in result.stderr
    assert "Traceback" not in result.stderr and "nothing of lab" in result.stderr
    assert lab_namespaces(name) == [] and not state.lab_dir(name).exists()


def test_the_first_lab_on_a_machine_without_run_netns_comes_up(tmp_path):
    """A fresh machine (or container) has no /run/netns: the first `up` makes it a shared mount
    point before the pod launcher opens it, so the pods' namespaces are found (a launcher holding
    the directory under the mount would open the placeholder files instead)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    name = lab_name("fresh")
    path = tmp_path / "lab.yaml"
    path.write_text(lab_yaml(name) + pod_yaml("a", "node-1") + pod_yaml("b", "node-2"))
    # a private mount namespace with an empty /run: no /run/netns, no /run/netlab
    script = ('mount -t tmpfs tmpfs /run && "$@" up -q "$LAB" && "$@" exec --name "$NAME" a -- hostname '
              '&& "$@" ping --name "$NAME" a b && "$@" down -q --name "$NAME"')
    result = subprocess.run(["unshare", "--mount", "sh", "-c", script, "sh", sys.executable, "-m", "netlab"],
                            capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, LAB=str(path), NAME=name))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "\na\n" in result.stdout and "Traceback" not in result.stderr
    assert lab_namespaces(name) == []
