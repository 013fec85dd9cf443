"""`netlab rotate-keys`: new WireGuard key pairs for every node of a running lab."""
from __future__ import annotations

import time

import click


@click.command("rotate-keys")
@click.option("--name", "lab_name", help="The lab, when several are up.")
def rotate_keys(lab_name):
    """Re-key every node of a running wireguard lab; traffic keeps flowing (at most one handshake)."""
    from ..kernel.privileges import require_privileges   # lazily: start-up time
    from ..ops import targets, wireguard
    require_privileges("rotate-keys")
    record = targets.load_lab(lab_name)
    started = time.perf_counter()
    rotated = wireguard.rotate(record.name)
    click.echo(f"lab {record.name}: new keys on {len(rotated)} nodes ({', '.join(rotated)}) "
               f"in {time.perf_counter() - started:.2f}s")
