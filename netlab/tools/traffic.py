"""ping and iperf3 between lab namespaces."""
from __future__ import annotations

import json
import shutil
import subprocess
import time

from ..kernel import procs
from ..errors import NetlabError
from ..ops.targets import Target


def ping(src: Target, dst: Target, count: int, timeout: float) -> int:
    argv = ["ping", "-c", str(count), "-W", str(max(1, int(timeout))), "-i", "0.2", str(dst.ip)]
    proc = procs.popen_in(src.netns, argv)
    return proc.wait()


def iperf(src: Target, dst: Target, seconds: float, parallel: int = 1, udp: bool = False,
          port: int = 5201) -> dict:
    """Run iperf3's server in dst and its client in src; the client's JSON report."""
    if dst.kind == "ip":
        raise NetlabError("iperf needs a pod or node as destination, to run the server there")
    if shutil.which("iperf3") is None:
        raise NetlabError("iperf3 is not installed: apt-get install iperf3 (setup.sh does)")
    server = procs.popen_in(dst.netns, ["iperf3", "-s", "-1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        report = None
        for _ in range(50):      # the server needs a moment to listen
            argv = ["iperf3", "-c", str(dst.ip), "-p", str(port), "-t", str(seconds), "-P", str(parallel),
                    "-J"] + (["-u", "-b", "0"] if udp else [])
            client = procs.popen_in(src.netns, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                out, _ = client.communicate(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                client.kill()
                client.wait()
                raise NetlabError(f"iperf3 from {src.name} to {dst.name} did not finish in {seconds + 30:.0f}s")
            try:
                report = json.loads(out or b"{}")
            except json.JSONDecodeError:
                raise NetlabError(f"iperf3 gave no JSON report: {out[:200]!r}") from None
            if "connection refused" not in report.get("error", "").lower():
                break
            time.sleep(0.05)
        if not report or report.get("error"):
            raise NetlabError(f"iperf3 from {src.name} to {dst.name} failed: "
                              f"{(report or {}).get('error', 'no report')}")
        return report
    finally:
        if server.poll() is None:
            server.kill()
        server.wait()


def iperf_summary(report: dict) -> dict:
    end = report.get("end", {})
    sent = end.get("sum_sent") or end.get("sum", {})
    received = end.get("sum_received") or end.get("sum", {})
    return {"sent_bps": sent.get("bits_per_second", 0.0),
            "received_bps": received.get("bits_per_second", 0.0),
            "retransmits": sent.get("retransmits", 0),
            "seconds": sent.get("seconds", 0.0)}
