"""nft itself accepts the per-node script, and applying it twice replaces the table (throwaway netns)."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from netlab.core import ipam
from netlab.core.policy.nft import node_ruleset
from netlab.spec.loader import load_text
from tests.policy_cases.cases import CASES, base_lab

NODES = ("node-1", "node-2")
LABS = {case.yaml: case.name.split("/")[0] for case in CASES}  # one entry per distinct lab

needs_nft = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("unshare") is None,
                               reason="needs root, nft and unshare (checks run in a throwaway netns)")


def run_in_throwaway_netns(script: str, shell: str) -> subprocess.CompletedProcess[str]:
    """Only ever inside `unshare --net`: the root namespace's ruleset is never touched."""
    return subprocess.run(["unshare", "--net", "sh", "-c", shell], input=script, text=True,
                          capture_output=True, timeout=60, check=False)


@pytest.mark.root
@needs_nft
@pytest.mark.parametrize("yaml", list(LABS), ids=list(LABS.values()))
def test_nft_accepts_every_case(yaml: str) -> None:
    lab = load_text(yaml, "case.yaml")
    ips = ipam.allocate(lab).pod_ips
    for node in NODES:
        script = node_ruleset(lab, ips, node)
        done = run_in_throwaway_netns(script, "nft -c -f -")
        assert done.returncode == 0, f"{node}:\n{done.stderr}\n{script}"


@pytest.mark.root
@needs_nft
def test_applying_twice_replaces_the_table() -> None:
    yaml = next(c.yaml for c in CASES if c.name.startswith("x-a-ingress-egress-x-b"))
    lab = load_text(yaml, "case.yaml")
    script = node_ruleset(lab, ipam.allocate(lab).pod_ips, "node-1")
    done = run_in_throwaway_netns(script, 'cat > "$0" && nft -f "$0" && nft -f "$0" && nft list ruleset; rm -f "$0"'
                                  .replace('"$0"', "/tmp/netlab-policy-test-$$.nft"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("table inet netlab_policy") == 1
    assert done.stdout.count("ct state established,related accept") == 1
    empty = node_ruleset(load_text(base_lab(), "empty.yaml"), {}, "node-1")
    gone = run_in_throwaway_netns(script + empty, "nft -f - && nft list ruleset")
    assert gone.returncode == 0 and "netlab_policy" not in gone.stdout, gone.stderr
