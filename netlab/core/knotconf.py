"""knot.conf for a cluster DNS pod: Knot DNS 3.2 (Debian 12's `knot`) as an authoritative-only
server of the zone files core/dnszone.py writes. Pure: zone names in, text out.

Each choice, with knot.conf(5) of 3.2:
- server: `rundir` holds the PID file and the control socket; `listen` the DNS addresses (UDP
  and TCP both); `udp-workers: 2`, `tcp-workers: 1`, `background-workers: 1`: the defaults are one
  thread per CPU (TCP at least 10), a lot of memory for a lab with two replicas per cluster; two
  UDP threads already answer far more than a lab asks. No `user`: the pod's own user runs it.
- database: `storage` (journal and timer databases) in the rundir, which is the pod's own
  writable directory; the zone files' directory may be read-only (shared by the replicas).
- template default: `zonefile-load: whole` (a reload reads the whole file again: the generator
  rewrites it, there is no incremental update), `journal-content: none` (nothing kept across
  restarts: the files are the truth), `zonefile-sync: -1` (Knot never writes a zone file),
  `semantic-checks: on` (extra checks, logged only; the mandatory ones, such as CNAME with other
  data, keep a broken zone from loading whatever this says).
- log: everything from info up to stderr, the container's log.
- control: `listen: <run_dir>/knot.sock`; `knotc -s <run_dir>/knot.sock -b zone-reload` reloads
  every zone after the files changed (`-b`: wait until the reload is done; knotc returns at once
  otherwise).
- one `zone` per origin, `file: <conf_dir>/<origin>.zone`.
Queries for names outside these zones are answered REFUSED at once (Knot serves no recursion).
"""
from __future__ import annotations

import re
from typing import Iterable

UDP_WORKERS = 2
TCP_WORKERS = 1
BACKGROUND_WORKERS = 1

_ZONE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*\Z")
_PATH = re.compile(r"/[-A-Za-z0-9_./]*\Z")
_LISTEN = re.compile(r"[0-9a-fA-F.:]+@[0-9]{1,5}\Z")


def zone_file(origin: str, conf_dir: str = "/etc/knot") -> str:
    return f"{conf_dir}/{origin}.zone"


def knot_conf(zone_names: Iterable[str], conf_dir: str = "/etc/knot", run_dir: str = "/var/lib/knot",
              listen: Iterable[str] = ("0.0.0.0@53",)) -> str:
    names = list(zone_names)
    listen = list(listen)
    for name in names:
        if not _ZONE.match(name):
            raise ValueError(f"zone name {name!r} is not a lower-case DNS name without the trailing dot")
    for path in (conf_dir, run_dir):
        if not _PATH.match(path):
            raise ValueError(f"{path!r} is not an absolute path of letters, digits, '-', '_', '.', '/'")
    for address in listen:
        if not _LISTEN.match(address):
            raise ValueError(f"listen address {address!r} is not ADDRESS@PORT")
    if len(set(names)) != len(names):
        raise ValueError("a zone is named twice")
    out = [
        "# knot.conf of a cluster DNS pod, written by netlab: authoritative for the cluster zone",
        "# and its reverse zones, nothing else (other names: REFUSED).",
        "server:",
        f'    rundir: "{run_dir}"',
        f"    listen: [ {', '.join(listen)} ]",
        f"    udp-workers: {UDP_WORKERS}",
        f"    tcp-workers: {TCP_WORKERS}",
        f"    background-workers: {BACKGROUND_WORKERS}",
        "",
        "database:",
        f'    storage: "{run_dir}"',
        "",
        "log:",
        "  - target: stderr",
        "    any: info",
        "",
        "control:",
        f'    listen: "{run_dir}/knot.sock"',
        "",
        "template:",
        "  - id: default",
        f'    storage: "{conf_dir}"',
        "    zonefile-load: whole",
        "    zonefile-sync: -1",
        "    journal-content: none",
        "    semantic-checks: on",
        "",
        "zone:",
    ]
    for name in names:
        out += [f"  - domain: {name}", f'    file: "{zone_file(name, conf_dir)}"']
    return "\n".join(out) + "\n"
