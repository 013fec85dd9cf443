"""benchmarks/scale's target lines: computed from the sizes of one run, met or NOT met."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from scale.report import scale_targets  # noqa: E402


def summary(up, down=None, rss=None):
    return {"up_s": up, "down_s": down, "peak_rss_mb": rss}


def test_the_10k_targets_compare_with_1k_of_the_same_run():
    results = [{"pods": 1000, "summary": {"netlab": summary(4.0), "iproute2": summary(8.0)}},
               {"pods": 10000, "summary": {"netlab": summary(60.0, 4.5, 120.0)}}]
    lines = scale_targets(results)
    assert lines[0] == "target: up of 1,000 pods <= 0.4x the iproute2 script -> 0.50x: NOT met"
    assert lines[1] == ("target: per-pod up time at 10,000 pods <= 1.3x that at 1,000 -> "
                        "6.00 ms vs 4.00 ms = 1.50x: NOT met")
    assert lines[2] == "target: down of 10,000 pods <= 5 s -> 4.50 s: met"
    assert lines[3] == "target: netlab's peak RSS at 10,000 pods <= 300 MB -> 120.0 MB: met"


def test_no_target_line_without_the_sizes_it_needs():
    assert scale_targets([{"pods": 20, "summary": {"netlab": summary(0.1, 0.05, 30.0)}}]) == []
