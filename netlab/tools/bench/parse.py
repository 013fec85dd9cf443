"""The tools' reports → numbers. Pure: unit-tested on captured outputs (tests/unit/fixtures/bench)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ...errors import NetlabError


class ToolOutputError(NetlabError):
    """A tool ran but its report says it failed, or is not the report we know how to read."""


@dataclass(frozen=True)
class Throughput:
    """iperf3's result: the bits per second received, over how many seconds, and the sender's retransmits."""

    bits_per_second: float     # received by the server, all streams together
    seconds: float
    retransmits: int


@dataclass(frozen=True)
class Transactions:
    """A request/response result (iperf 2 bounceback, wrk): transactions, their rate, flows and errors."""

    count: int                 # request/response pairs completed, all flows together
    per_second: float          # the sum of each flow's count / its own duration
    flows: int
    errors: int = 0            # connections that failed (wrk's socket errors, non-2xx answers)


def iperf3(text: str) -> Throughput:
    """iperf3 -J: the receiver's sum (what arrived), iperf3's own error when it failed."""
    try:
        report = json.loads(text)
    except json.JSONDecodeError as err:
        raise ToolOutputError(f"iperf3 printed no JSON report ({err}): {_excerpt(text)}") from err
    if not isinstance(report, dict):
        raise ToolOutputError(f"iperf3's report is not a JSON object: {_excerpt(text)}")
    if report.get("error"):
        raise ToolOutputError(f"iperf3 failed: {report['error']}")
    end = report.get("end") or {}
    received = end.get("sum_received") or {}
    sent = end.get("sum_sent") or {}
    if "bits_per_second" not in received:
        raise ToolOutputError(f"iperf3's report has no end.sum_received: {_excerpt(text)}")
    return Throughput(float(received["bits_per_second"]), float(received.get("seconds", 0.0)),
                      int(sent.get("retransmits", 0)))


# iperf 2.1's bounceback result per flow, e.g.
# [  1] 0.0000-1.0077 sec  7.55 MBytes  62.8 Mbits/sec    39565=0.024/0.017/7.402/0.113 ms    0  195K/992 us    41071 rps
# ("BB cnt=avg/min/max/stdev": the count of bounces, then latencies). Histogram lines (PDF) are skipped.
_BOUNCEBACK = re.compile(
    r"^\[\s*(?P<flow>\d+)\]\s+(?P<start>[\d.]+)-(?P<end>[\d.]+)\s+sec\s+.*?\s(?P<count>\d+)="
    r"[\d.]+/[\d.]+/[\d.]+/[\d.]+\s+ms\b")


def iperf2_bounceback(text: str) -> Transactions:
    """iperf 2.1 --bounceback: per flow, the line covering the whole run (start 0, latest end)."""
    finals: dict[int, tuple[float, int]] = {}
    for line in text.splitlines():
        if "PDF" in line:
            continue
        match = _BOUNCEBACK.match(line.strip())
        if not match or float(match["start"]) != 0.0:
            continue
        flow, seconds, count = int(match["flow"]), float(match["end"]), int(match["count"])
        if seconds > finals.get(flow, (0.0, 0))[0]:
            finals[flow] = (seconds, count)
    if not finals:
        failure = next((line.strip() for line in text.splitlines() if "failed" in line.lower()), "")
        raise ToolOutputError("iperf (2) reported no bounceback result"
                              + (f": {failure}" if failure else f": {_excerpt(text)}"))
    rate = sum(count / seconds for seconds, count in finals.values() if seconds > 0)
    return Transactions(sum(count for _, count in finals.values()), rate, len(finals))


_WRK_TOTAL = re.compile(r"^\s*(?P<count>\d+) requests in (?P<num>[\d.]+)(?P<unit>us|ms|s|m|h)\b", re.M)
_WRK_RATE = re.compile(r"^Requests/sec:\s+(?P<rate>[\d.]+)", re.M)
_WRK_SOCKET_ERRORS = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_WRK_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_WRK_THREADS = re.compile(r"(\d+) threads and (\d+) connections")
_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def wrk(text: str) -> Transactions:
    """wrk's summary: requests completed and Requests/sec; socket errors and non-2xx counted."""
    total, rate = _WRK_TOTAL.search(text), _WRK_RATE.search(text)
    if not total or not rate:
        raise ToolOutputError(f"wrk reported no result: {_excerpt(text)}")
    socket_errors = _WRK_SOCKET_ERRORS.search(text)
    non_2xx = _WRK_NON_2XX.search(text)
    errors = (sum(int(n) for n in socket_errors.groups()) if socket_errors else 0) \
        + (int(non_2xx[1]) if non_2xx else 0)
    threads = _WRK_THREADS.search(text)
    return Transactions(int(total["count"]), float(rate["rate"]), int(threads[2]) if threads else 1, errors)


def _excerpt(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return (text[:limit] + " ...") if len(text) > limit else (text or "<no output>")
