"""Cluster DNS zone files: how long they take to write, and what knotd costs serving them.

    sudo python3 -m benchmarks.dnszone --services 10 1000

For each size: N ClusterIP Services in `default` with one named port and 3 ready endpoints each;
the time `core.dnszone.zones()` takes; the files and knot.conf written to a temporary directory;
knotd started on them in a network namespace of its own (`unshare --net`, gone with the process);
its resident memory and threads once every zone is loaded; the best of 5 `knotc -b zone-reload`.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from netlab.core.dnszone import DnsEndpoint, DnsPort, DnsService, zones
from netlab.core.knotconf import knot_conf, zone_file

POD_SUBNET = IPv4Network("172.16.0.0/16")
SERVICE_SUBNET = IPv4Network("172.18.0.0/20")


def services(count: int) -> list[DnsService]:
    return [DnsService(f"svc-{i}", "default", SERVICE_SUBNET.network_address + 20 + i, (DnsPort("http", "TCP", 80),),
                       tuple(DnsEndpoint(POD_SUBNET.network_address + 2 + 3 * i + k, None, True) for k in range(3)))
            for i in range(count)]


def measure(count: int, root: Path) -> dict[str, float]:
    start = time.perf_counter()
    generated = zones("cluster.local", POD_SUBNET, SERVICE_SUBNET, services(count), [], 1)
    elapsed = time.perf_counter() - start
    etc, run = root / "etc", root / "run"
    etc.mkdir()
    run.mkdir()
    for origin, text in generated.files.items():
        Path(zone_file(origin, str(etc))).write_text(text)
    conf = etc / "knot.conf"
    conf.write_text(knot_conf(generated.origins, str(etc), str(run)))
    sock = str(run / "knot.sock")
    knotd = subprocess.Popen(["unshare", "--net", "sh", "-c", f'ip link set lo up && exec knotd -c "{conf}"'],
                             stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            if knotd.poll() is not None:
                raise SystemExit("knotd exited")
            if subprocess.run(["knotc", "-s", sock, "-b", "zone-reload"], capture_output=True).returncode == 0:
                break
            time.sleep(0.05)
        status = dict(line.split(":", 1) for line in Path(f"/proc/{knotd.pid}/status").read_text().splitlines())
        reloads = []
        for _ in range(5):
            begin = time.perf_counter()
            subprocess.run(["knotc", "-s", sock, "-b", "zone-reload"], check=True, capture_output=True)
            reloads.append(time.perf_counter() - begin)
    finally:
        knotd.terminate()
        knotd.wait()
    return {"zones_ms": elapsed * 1000, "lines": sum(len(t.splitlines()) for t in generated.files.values()),
            "zones": len(generated.files), "rss_mb": int(status["VmRSS"].split()[0]) / 1000,
            "threads": int(status["Threads"]), "reload_ms": min(reloads) * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, nargs="+", default=[10, 1000])
    args = parser.parse_args()
    missing = [tool for tool in ("knotd", "knotc", "unshare") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"{', '.join(missing)} not installed (apt-get install knot)")
    print("| Services | `zones()` | zone lines | knotd RSS (threads) | `knotc -b zone-reload`, best of 5 |")
    print("| --- | --- | --- | --- | --- |")
    for count in args.services:
        with tempfile.TemporaryDirectory(prefix="netlab-dnszone-") as tmp:
            m = measure(count, Path(tmp))
        print(f"| {count:,} | {m['zones_ms']:.0f} ms | {m['lines']:,} | {m['rss_mb']:.1f} MB ({m['threads']}) "
              f"| {m['reload_ms']:.0f} ms ({m['zones']} zones) |")


if __name__ == "__main__":
    main()
