"""Link impairments on a running lab: the lab file's at every `up`, and `netlab impair`'s.

The lab file is the truth for its own entries: `up` applies them (tc replace: the same again
changes nothing) and clears the ones it set earlier that the file no longer lists. Entries made
with `netlab impair` stay until `netlab impair --clear` or `down`; a rebuilt namespace gets them
again. All of them are kept in the state record, which `status` shows.
"""
from __future__ import annotations

import os
from dataclasses import replace

from ..core.impairment import PlacedImpairment, placed
from ..errors import InputError, NetlabError
from ..kernel import impair as tc
from ..kernel import netns
from ..model.impairment import Impairment
from ..model.lab import LabFile
from . import state
from .record import ImpairmentRecord

FILE, CLI = "file", "cli"


def preflight(lab: LabFile) -> None:
    """Before anything is built: tc and each qdisc's module are there."""
    for one in placed(lab):
        tc.check_features(one.impairment)


def converge(lab: LabFile, old: tuple[ImpairmentRecord, ...]) -> tuple[ImpairmentRecord, ...]:
    """Apply the file's impairments and keep `netlab impair`'s; the record's new list."""
    wanted = placed(lab)
    keys = {(one.netns, one.interface) for one in wanted}
    kept: list[ImpairmentRecord] = []
    for rec in old:
        if (rec.netns, rec.interface) in keys or not os.path.exists(netns.path(rec.netns)):
            continue
        if rec.source == FILE:
            _clear_if_there(rec.netns, rec.interface)
        else:
            tc.apply(rec.netns, rec.interface, rec.impairment)
            kept.append(rec)
    for one in wanted:
        tc.apply(one.netns, one.interface, one.impairment)
    return tuple(_recorded(one, FILE) for one in wanted) + tuple(kept)


def _recorded(one: PlacedImpairment, source: str) -> ImpairmentRecord:
    return ImpairmentRecord(one.target, one.netns, one.interface, source, one.impairment)


def _clear_if_there(netns_name: str, interface: str) -> None:
    try:
        tc.clear(netns_name, interface)
    except InputError:   # the interface went with a rebuild: nothing to clear
        pass


def set_on(target: str, interface: str | None, impairment: Impairment, lab_name: str | None) -> ImpairmentRecord:
    """`netlab impair TARGET[:IFACE]`: put (or, empty, clear) an impairment; its record."""
    from .targets import resolve   # lazily: `up` does not need it (start-up time)
    where = resolve(target, lab_name)
    made = ImpairmentRecord(where.name, where.netns, interface or "eth0", CLI, impairment)
    if not os.path.exists(netns.path(made.netns)):
        raise NetlabError(f"{where.kind} {where.name}'s namespace {made.netns} is gone: run `netlab up` again")
    with state.locked(where.lab):
        record = state.load(where.lab)
        if record is None:
            raise NetlabError(f"lab {where.lab!r} is not up")
        tc.apply(made.netns, made.interface, impairment)
        others = tuple(i for i in record.impairments if (i.netns, i.interface) != (made.netns, made.interface))
        state.save(where.lab, replace(record, impairments=others + (() if impairment.is_empty() else (made,))))
    return made


def shown(target: str, interface: str | None, lab_name: str | None) -> Impairment:
    """What the kernel holds on the target's interface now."""
    from .targets import resolve   # lazily: `up` does not need it (start-up time)
    where = resolve(target, lab_name)
    return tc.read(where.netns, interface or "eth0")
