"""netlab bench's results: ratios to the baseline, the contract's JSON, the table, the plot; argument checks."""
from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner
from rich.console import Console

from netlab.tools.bench import report
from netlab.cli.bench import parse_backends, parse_tests
from netlab.tools.bench.runner import Measurement, BenchTest
from netlab.tools.bench.session import BenchOptions, BenchRun, Result
from netlab.cli import main
from netlab.errors import InputError, NetlabError
from netlab.core.backends import Backend

MACHINE = {"cpus": 2, "cpu_model": "test CPU", "kernel": "6.18", "machine": "x86_64"}


def measured(value: float, unit: str, host: float = 2.0) -> Measurement:
    return Measurement(value, unit, client_cpu=0.5, server_cpu=0.25, host_cpu=host, seconds=1.05, duration=1,
                       flows=2, errors=0, tool="t")


def sample_run() -> BenchRun:
    run = BenchRun(BenchOptions((Backend.VXLAN, Backend.HOST_GW), (BenchTest.STREAM, BenchTest.RR), 1, 2))
    for backend, path, test, value in [
            ("host-gw", "cross-node", "TCP_RR", 20000.0), ("vxlan", "cross-node", "TCP_STREAM", 5.0),
            ("veth", "baseline", "TCP_RR", 40000.0), ("vxlan", "same-node", "TCP_RR", 30000.0),
            ("veth", "baseline", "TCP_STREAM", 10.0), ("vxlan", "cross-node", "TCP_RR", 10000.0)]:
        run.results.append(Result(backend, path, test, measured(value, "Gbit/s" if test == "TCP_STREAM"
                                                                  else "trans/s")))
    return run


def test_json_follows_the_contract_with_ratios_and_cpu():
    data = json.loads(json.dumps(report.as_json(sample_run(), MACHINE)))
    rows = data["results"]
    assert all({"backend", "path", "test", "value", "unit"} <= row.keys() for row in rows)
    by_key = {(r["backend"], r["path"], r["test"]): r for r in rows}
    assert by_key[("vxlan", "cross-node", "TCP_STREAM")]["ratio"] == 0.5
    assert by_key[("host-gw", "cross-node", "TCP_RR")]["ratio"] == 0.5
    assert by_key[("veth", "baseline", "TCP_RR")]["ratio"] == 1.0
    assert by_key[("vxlan", "same-node", "TCP_RR")]["cpu_seconds"] == 0.75
    assert data["settings"] == {"backends": ["vxlan", "host-gw"], "tests": ["TCP_STREAM", "TCP_RR"],
                                "duration": 1, "parallel": 2}
    assert data["machine"]["cpus"] == 2


def test_rows_come_in_test_order_baseline_first_then_backends_as_asked():
    order = [(r["test"], r["backend"], r["path"]) for r in report.rows(sample_run())]
    assert order == [("TCP_STREAM", "veth", "baseline"), ("TCP_STREAM", "vxlan", "cross-node"),
                     ("TCP_RR", "veth", "baseline"), ("TCP_RR", "vxlan", "same-node"),
                     ("TCP_RR", "vxlan", "cross-node"), ("TCP_RR", "host-gw", "cross-node")]


def test_host_cost_per_unit_of_work():
    rr = Result("vxlan", "cross-node", "TCP_RR", measured(10000.0, "trans/s", host=2.0))
    assert report.host_cost(rr) == (pytest.approx(200.0), "µs/trans")     # 2 s over 10,000 transactions
    stream = Result("vxlan", "cross-node", "TCP_STREAM", measured(4.0, "Gbit/s", host=2.0))
    assert report.host_cost(stream) == (pytest.approx(500.0), "ms/Gbit")


def test_no_baseline_means_no_ratio():
    run = sample_run()
    run.results[:] = [r for r in run.results if r.path != "baseline"]
    assert {row["ratio"] for row in report.rows(run)} == {None}


def test_table_shows_every_figure():
    console = Console(width=200, record=True)
    report.print_table(console, sample_run(), MACHINE)
    text = console.export_text()
    assert "20,000" in text and "0.50" in text and "host-gw" in text and "baseline" in text


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    target = tmp_path / "bench.png"
    report.plot(sample_run(), MACHINE, str(target))
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_matplotlib_is_named_with_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)    # import matplotlib now raises ImportError
    with pytest.raises(NetlabError, match=r"pip install netlab-k8s\[plot\]"):
        report.require_matplotlib()


def test_backends_and_tests_are_parsed_and_checked():
    assert parse_backends("vxlan, host-gw,vxlan") == (Backend.VXLAN, Backend.HOST_GW)
    assert parse_tests("crr,TCP_STREAM,rr") == (BenchTest.CRR, BenchTest.STREAM, BenchTest.RR)
    with pytest.raises(InputError, match="unknown backend 'calico'"):
        parse_backends("vxlan,calico")
    with pytest.raises(InputError, match="unknown test 'udp'"):
        parse_tests("udp")
    with pytest.raises(InputError, match="empty"):
        parse_tests(",")


@pytest.mark.parametrize("args", [["--backends", "nope"], ["--tests", "stream,x"], ["--duration", "0"],
                                  ["--parallel", "0"], ["--lab-prefix", "Bad_Prefix"],
                                  ["--lab-prefix", "a-very-long-prefix-indeed"]])
def test_bad_arguments_exit_2_before_anything_runs(args):
    result = CliRunner().invoke(main, ["bench", *args])
    assert result.exit_code == 2, result.output
