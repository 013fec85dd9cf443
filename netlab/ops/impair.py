"""Link impairments on a running lab: the lab file's at every `up`, and `netlab impair`'s.

The lab file is the truth for its own entries: `up` applies them (tc replace: the same again
changes nothing) and clears the ones it set earlier that the file no longer lists. Entries made
with `netlab impair` stay until `netlab impair --clear` or `down`; a rebuilt namespace gets them
again. All of them are kept in the state record, which `status` shows.
"""
from __future__ import annotations

import os

from ..core.impairment import PlacedImpairment, entry, from_entry, placed
from ..errors import InputError, NetlabError
from ..kernel import impair as tc
from ..kernel import netns
from ..model.impairment import Impairment
from ..model.lab import LabFile
from . import state
from .targets import resolve

FILE, CLI = "file", "cli"


def preflight(lab: LabFile) -> None:
    """Before anything is built: tc and each qdisc's module are there."""
    for one in placed(lab):
        tc.check_features(one.impairment)


def converge(lab: LabFile, old_entries: list[dict]) -> list[dict]:
    """Apply the file's impairments and keep `netlab impair`'s; the record's new list."""
    wanted = placed(lab)
    keys = {(one.netns, one.interface) for one in wanted}
    kept: list[dict] = []
    for data in old_entries:
        key = (data["netns"], data["interface"])
        if key in keys or not os.path.exists(netns.path(data["netns"])):
            continue
        if data.get("source") == FILE:
            _clear_if_there(from_entry(data))
        else:
            one = from_entry(data)
            tc.apply(one.netns, one.interface, one.impairment)
            kept.append(data)
    for one in wanted:
        tc.apply(one.netns, one.interface, one.impairment)
    return [entry(one, FILE) for one in wanted] + kept


def _clear_if_there(one: PlacedImpairment) -> None:
    try:
        tc.clear(one.netns, one.interface)
    except InputError:   # the interface went with a rebuild: nothing to clear
        pass


def set_on(target: str, interface: str | None, impairment: Impairment, lab_name: str | None) -> dict:
    """`netlab impair TARGET[:IFACE]`: put (or, empty, clear) an impairment; the record's entry."""
    where = resolve(target, lab_name)
    one = PlacedImpairment(where.netns, interface or "eth0", impairment, where.name)
    if not os.path.exists(netns.path(one.netns)):
        raise NetlabError(f"{where.kind} {where.name}'s namespace {one.netns} is gone: run `netlab up` again")
    with state.locked(where.lab):
        record = state.load(where.lab)
        if record is None:
            raise NetlabError(f"lab {where.lab!r} is not up")
        tc.apply(one.netns, one.interface, impairment)
        others = [e for e in record.get("impairments", [])
                  if (e["netns"], e["interface"]) != (one.netns, one.interface)]
        made = entry(one, CLI)
        record["impairments"] = others + ([] if impairment.is_empty() else [made])
        state.save(where.lab, record)
    return made


def shown(target: str, interface: str | None, lab_name: str | None) -> Impairment:
    """What the kernel holds on the target's interface now."""
    where = resolve(target, lab_name)
    return tc.read(where.netns, interface or "eth0")
