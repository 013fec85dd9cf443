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
