"""netlab bench's parsers on outputs captured from the real tools (Debian 12: iperf3 3.12, iperf 2.1.8, wrk 4.1.0)."""
from __future__ import annotations

from pathlib import Path

import pytest

from netlab.tools.bench import parse

FIXTURES = Path(__file__).parent / "fixtures" / "bench"


def sample(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_iperf3_reads_the_receivers_sum():
    got = parse.iperf3(sample("iperf3_p2.json"))
    assert got.bits_per_second == pytest.approx(6221094122.62616)
    assert got.retransmits == 91 and got.seconds > 0.9


def test_iperf3_failure_is_iperf3s_own_message():
    with pytest.raises(parse.ToolOutputError, match="unable to connect to server: Connection refused"):
        parse.iperf3(sample("iperf3_refused.json"))


@pytest.mark.parametrize("text", ["", "iperf3: error - no JSON", "[1, 2]", '{"end": {}}'])
def test_iperf3_without_a_report_says_so(text):
    with pytest.raises(parse.ToolOutputError, match="iperf3"):
        parse.iperf3(text)


def test_bounceback_one_flow():
    got = parse.iperf2_bounceback(sample("iperf2_bounceback_p1.txt"))
    assert (got.count, got.flows) == (39565, 1)
    assert got.per_second == pytest.approx(39565 / 1.0077)


def test_bounceback_sums_every_flow_each_over_its_own_duration():
    got = parse.iperf2_bounceback(sample("iperf2_bounceback_p3.txt"))
    assert got.flows == 3 and got.count == 20097 + 39551 + 25904
    assert got.per_second == pytest.approx(20097 / 1.0035 + 39551 / 1.0036 + 25904 / 1.0043)


def test_bounceback_with_interval_reports_takes_the_whole_run_line():
    got = parse.iperf2_bounceback(sample("iperf2_bounceback_intervals.txt"))
    assert (got.count, got.flows) == (86940 + 79708, 2)
    assert got.per_second == pytest.approx((86940 + 79708) / 2.0095)


def test_bounceback_refused_names_the_failure():
    # iperf 2.1.8 exits 0 here: the report, not the exit code, says it failed
    with pytest.raises(parse.ToolOutputError, match="tcp connect failed: Connection refused"):
        parse.iperf2_bounceback(sample("iperf2_bounceback_refused.txt"))


def test_wrk_rate_and_count():
    got = parse.wrk(sample("wrk_connection_close.txt"))
    assert (got.count, got.per_second, got.flows, got.errors) == (12579, 11268.83, 4, 0)


def test_wrk_counts_socket_errors():
    got = parse.wrk(sample("wrk_socket_errors.txt"))
    assert got.errors == 21698 and got.flows == 500 and got.per_second == 11484.55


def test_wrk_counts_non_2xx_answers():
    text = sample("wrk_connection_close.txt").replace("Requests/sec:", "  Non-2xx or 3xx responses: 7\nRequests/sec:")
    assert parse.wrk(text).errors == 7


def test_wrk_refused_has_no_result():
    with pytest.raises(parse.ToolOutputError, match="unable to connect"):
        parse.wrk(sample("wrk_refused.txt"))
