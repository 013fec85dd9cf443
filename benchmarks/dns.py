#!/usr/bin/env python3
"""Cluster DNS benchmark: dnsperf from a pod, through kube-dns (kube-proxy DNAT) and to a DNS pod directly.

    sudo python3 benchmarks/dns.py [--seconds 10] [--repeat 3] [--clients 4] [--json]

Builds topologies/dns.yaml (under a name of its own), then runs dnsperf (Debian's dnsperf) in
the `client` pod on node-1, REPEAT rounds of: against 172.18.0.10 (the kube-dns ClusterIP:
kube-proxy's DNAT spreads the queries over both DNS pods, one per node), then against each DNS
pod's own IP (no Service: the baseline, measured in the same run). The queries cycle through
the records of the lab: Service A, headless A, SRV, PTR of a Service and of a pod, pod A,
dns-version TXT, and an NXDOMAIN; each answer is the zone's, from knotd. Reported per target:
the median queries/s, average latency, lost queries (no answer within dnsperf's 5 s timeout)
over the rounds, and the ratio through the Service / direct. Targets (issue: cluster DNS):
≥ 10,000 queries/s through the Service, and no lost answers.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from ipaddress import IPv4Address
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from netlab.kernel import procs  # noqa: E402
from netlab.ops import lab as lab_ops, state  # noqa: E402
from netlab.ops.record import LabRecord  # noqa: E402
from netlab.spec import loader  # noqa: E402

TOPOLOGY = ROOT / "topologies" / "dns.yaml"
DNS_IP = "172.18.0.10"
TARGET_QPS = 10_000
# queries in flight at most: each datagram queued on a veth is charged ~2 KiB (its truesize) to the
# sending socket; 100 in flight during a CPU stall of a loaded machine filled a 208 KiB send buffer
# (UdpSndbufErrors in the client and in knotd), 50 did not
OUTSTANDING = 50
FIELDS = {"sent": r"Queries sent:\s+(\d+)", "completed": r"Queries completed:\s+(\d+)",
          "lost": r"Queries lost:\s+(\d+)", "qps": r"Queries per second:\s+([\d.]+)",
          "latency_s": r"Average Latency \(s\):\s+([\d.]+)"}


def queries(record: LabRecord, zone: str) -> str:
    """dnsperf's input: one `name type` per line, every kind of record the zone serves."""
    web = next(s.cluster_ip for s in record.services if s.key == "default/web")
    client = record.pod("default/client")
    lines = [f"web.default.svc.{zone} A", f"db.default.svc.{zone} A", f"kube-dns.kube-system.svc.{zone} A",
             f"_http._tcp.web.default.svc.{zone} SRV", f"{IPv4Address(web).reverse_pointer} PTR",
             f"{IPv4Address(client.ip).reverse_pointer} PTR", f"{client.ip.replace('.', '-')}.default.pod.{zone} A",
             f"dns-version.{zone} TXT", f"missing.default.svc.{zone} A"]
    return "\n".join(lines) + "\n"


def dnsperf(netns: str, server: str, datafile: str, seconds: int, clients: int) -> dict:
    argv = ["dnsperf", "-s", server, "-d", datafile, "-l", str(seconds), "-c", str(clients), "-T", "1",
            "-q", str(OUTSTANDING), "-b", "4096"]   # dnsperf's own socket: 4 MiB, or its queue overflows first
    proc = procs.popen_in(netns, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=seconds + 30)
    if proc.returncode != 0:
        raise SystemExit(f"dnsperf failed ({' '.join(argv)}): {err or out}")
    found = {}
    for key, pattern in FIELDS.items():
        match = re.search(pattern, out)
        if match is None:
            raise SystemExit(f"dnsperf printed no {key!r}: {out}")
        found[key] = float(match.group(1))
    found["noerror_or_nxdomain"] = all(code in ("NOERROR", "NXDOMAIN") for code in re.findall(r"(\w+) \d+ \(", out))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark builds a lab")
    name = f"dnsbench{os.getpid() % 10000}"
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dns.yaml"
        path.write_text(TOPOLOGY.read_text().replace("name: dns\n", f"name: {name}\n", 1))
        lab_ops.up(loader.load_file(str(path)))
        try:
            record = state.load(name)
            datafile = Path(tmp) / "queries.txt"
            datafile.write_text(queries(record, record.networking.dns_domain))
            client = record.pod("default/client")
            targets = {f"kube-dns {DNS_IP} (Service)": DNS_IP}
            for pod in record.pods:
                if pod.namespace == "kube-system" and pod.labels.get("k8s-app") == "kube-dns":
                    where = "same node" if pod.node == client.node else "other node"
                    targets[f"{pod.name} {pod.ip} (direct, {where})"] = pod.ip
            for _ in range(args.repeat):   # interleaved: the load of the machine hits every target alike
                for label, server in targets.items():
                    runs.setdefault(label, []).append(
                        dnsperf(client.netns, server, str(datafile), args.seconds, args.clients))
        finally:
            lab_ops.down(name)
    summary = {label: {"qps": statistics.median(r["qps"] for r in rs),
                       "latency_ms": statistics.median(r["latency_s"] for r in rs) * 1000,
                       "lost": sum(r["lost"] for r in rs), "sent": sum(r["sent"] for r in rs),
                       "rcodes_ok": all(r["noerror_or_nxdomain"] for r in rs)} for label, rs in runs.items()}
    service = summary[next(iter(summary))]
    direct = [v for k, v in summary.items() if "direct" in k]
    best_direct = max(d["qps"] for d in direct)
    report = {"load_average": os.getloadavg()[0], "seconds": args.seconds, "repeat": args.repeat,
              "clients": args.clients, "outstanding": OUTSTANDING, "targets": summary,
              "service_over_direct": service["qps"] / best_direct, "target_qps": TARGET_QPS,
              "qps_met": service["qps"] >= TARGET_QPS, "no_lost_met": all(v["lost"] == 0 for v in summary.values())}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"dnsperf -l {args.seconds} -c {args.clients} -T 1 -q {OUTSTANDING} -b 4096 from pod default/client "
          f"(node-1), {args.repeat} rounds, medians; load average {report['load_average']:.1f} after the runs")
    print(f"{'target':<58} {'queries/s':>10} {'latency ms':>10} {'lost':>6} {'sent':>9}")
    for label, v in summary.items():
        print(f"{label:<58} {v['qps']:>10.0f} {v['latency_ms']:>10.3f} {v['lost']:>6.0f} {v['sent']:>9.0f}")
    print(f"through the Service / best direct: {report['service_over_direct']:.2f}")
    print(f"target: >= {TARGET_QPS} queries/s through the Service -> {service['qps']:.0f}: "
          f"{'met' if report['qps_met'] else 'NOT met'}")
    print(f"target: no lost answers -> {'met' if report['no_lost_met'] else 'NOT met'}; every answer NOERROR or "
          f"NXDOMAIN: {'yes' if all(v['rcodes_ok'] for v in summary.values()) else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
