"""Smoke of the scale benchmark (benchmarks/scale) at 2 x 10: structure, same objects, no leftovers.

No timing is asserted: CI machines differ, and the figures belong in the README, not in a test.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from netlab.kernel import netns
from tests.support.labs import lab_name

pytestmark = pytest.mark.root

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "scale"


def test_scale_benchmark_smoke():
    prefix = lab_name("sc")[:20]
    proc = subprocess.run([sys.executable, str(BENCH), "--nodes", "2", "--pods-per-node", "10", "--json",
                           "--name-prefix", prefix],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["left_behind"] == []
    assert [n for n in netns.listed() if n.startswith(prefix)] == []
    (result,) = report["results"]
    assert (result["nodes"], result["pods"], result["namespaces"]) == (2, 20, 1 + 2 + 20)
    for approach in ("netlab", "in-process", "iproute2"):
        summary = result["summary"][approach]
        assert summary["errors"] == [], summary["errors"]
        assert summary["up_s"] > 0 and summary["down_s"] >= 0
        assert all(run["namespaces"] == 23 for run in result["runs"][approach])
    assert result["summary"]["netlab"]["peak_rss_mb"] > 0
    assert {"build 1 vpc", "build 2 nodes", "build 20 pods", "down: inventory"} <= \
        set(result["runs"]["netlab"][0]["stages"])
    same = result["equivalence"]
    assert same["equivalent"], same["differences"]
    assert same["namespaces"] == {"netlab": 23, "iproute2": 23}
    assert same["objects"]["netlab"] == same["objects"]["iproute2"]
    assert same["objects"]["netlab"]["hairpin"] == 20 and same["objects"]["netlab"]["fdb"] == 2


def test_scale_benchmark_leaves_namespaces_it_did_not_make():
    """A namespace already holding a name the iproute2 script needs: that build is refused, and
    the namespace is neither built over nor deleted by the benchmark's cleanup."""
    prefix = lab_name("sc")[:20]
    blocker = f"{prefix}i.vpc"
    subprocess.run(["ip", "netns", "add", blocker], check=True)
    try:
        proc = subprocess.run([sys.executable, str(BENCH), "--nodes", "1", "--pods-per-node", "1", "--json",
                               "--no-inprocess", "--name-prefix", prefix],
                              capture_output=True, text=True, timeout=300)
        report = json.loads(proc.stdout)
        (result,) = report["results"]
        assert "namespaces already exist" in result["summary"]["iproute2"]["errors"][0]
        assert result["summary"]["netlab"]["errors"] == []
        assert report["left_behind"] == [blocker] and proc.returncode == 1
        assert [n for n in netns.listed() if n.startswith(prefix)] == [blocker]
    finally:
        subprocess.run(["ip", "netns", "del", blocker], check=False)


def test_scale_benchmark_ports_run_counts_the_labs_processes():
    """--ports: the same lab with a port per pod; the processes counted for PSS are the pod inits,
    plus the lab's one responder with ports. No timing or memory figure is asserted."""
    prefix = lab_name("sp")[:20]
    proc = subprocess.run([sys.executable, str(BENCH), "--nodes", "1", "--pods-per-node", "5", "--ports", "1",
                           "--no-inprocess", "--no-iproute2", "--json", "--name-prefix", prefix],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["left_behind"] == []
    (result,) = report["results"]
    summary = result["summary"]
    assert set(summary) == {"netlab", "ports"} and result["ports"] == 1
    assert summary["netlab"]["errors"] == [] and summary["ports"]["errors"] == []
    assert (summary["netlab"]["processes"], summary["ports"]["processes"]) == (5, 6)
    assert summary["ports"]["pss_mb"] > summary["netlab"]["pss_mb"] > 0
