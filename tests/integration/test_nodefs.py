"""A node's own /run and /etc entries and hostname, for node daemons and `netlab exec NODE`."""
from __future__ import annotations

import os
import subprocess

import pytest

from netlab.kernel import nodefs
from netlab.ops import state
from tests.support.kernel import netlab
from tests.support.labs import lab_name, lab_yaml

pytestmark = pytest.mark.root


def test_a_nodes_files_and_hostname_are_its_own_and_the_host_sees_none(make_lab):
    name = lab_name("nf")
    make_lab(lab_yaml(name))
    roots = {node: nodefs.prepare(nodefs.node_root(state.lab_dir(name), node)) for node in ("node-1", "node-2")}
    for node, root in roots.items():
        (root / "run" / "netlabtest").mkdir()
        (root / "run" / "netlabtest" / "who").write_text(node)
    host_hostname = os.uname().nodename
    for node in roots:
        out = netlab("exec", "--name", name, node, "--", "sh", "-c",
                     "hostname; cat /run/netlabtest/who; echo; ip netns list | grep -c .; ip -o link show eth0",
                     check=True).stdout.splitlines()
        assert out[0] == node and out[1] == node          # its hostname, its own /run entry
        assert int(out[2]) >= 3                           # the host's /run/netns stays visible
        assert "eth0" in out[3]                           # in the node's network namespace
    assert not os.path.exists("/run/netlabtest") and os.uname().nodename == host_hostname
    # exit codes pass through the wrapper; a daemon keeps the pid it was started with
    assert netlab("exec", "--name", name, "node-1", "--", "sh", "-c", "exit 7").returncode == 7
    argv = nodefs.wrap(f"{name}.node-1", roots["node-1"], "node-1", ["sh", "-c", "echo $$"])
    proc = subprocess.run(argv, capture_output=True, text=True, check=True)
    assert proc.stdout.strip().isdigit()


def test_etc_entries_cover_only_what_the_host_has(make_lab, tmp_path):
    name = lab_name("nf")
    make_lab(lab_yaml(name))
    root = nodefs.prepare(nodefs.node_root(state.lab_dir(name), "node-1"))
    (root / "etc" / "hostname").write_text("node-1-file\n")          # exists in the host: covered
    (root / "etc" / "netlab-no-such-file").write_text("x")           # absent in the host: not created
    out = netlab("exec", "--name", name, "node-1", "--", "sh", "-c",
                 "cat /etc/hostname; test -e /etc/netlab-no-such-file && echo created || echo absent",
                 check=True).stdout.split()
    assert out == ["node-1-file", "absent"]
    assert not os.path.exists("/etc/netlab-no-such-file")


def test_etc_entries_are_bound_when_the_run_dir_is_under_run(make_lab):
    """netlab's default run directory is /run/netlab: the node's etc/ must be bound before /run is
    covered, or a daemon (BIRD) silently reads the host's /etc."""
    import shutil
    import tempfile
    from pathlib import Path
    name = lab_name("nf")
    make_lab(lab_yaml(name))
    where = Path(tempfile.mkdtemp(prefix="netlab-nodefs-", dir="/run"))
    try:
        root = nodefs.prepare(nodefs.node_root(where, "node-1"))
        (root / "etc" / "hostname").write_text("from-the-node\n")
        argv = nodefs.wrap(f"{name}.node-1", root, "node-1", ["cat", "/etc/hostname"])
        assert subprocess.run(argv, capture_output=True, text=True, check=True).stdout == "from-the-node\n"
    finally:
        shutil.rmtree(where)
