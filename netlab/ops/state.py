"""Lab state under /run/netlab/<lab>/: state.json, container logs, and the lab's lock.

The state file is a record, not the source of truth: ownership is proven by the mark on
each namespace (see netlab.inventory). NETLAB_RUN_DIR moves the directory (tests).
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import InputError, NetlabError
from ..names import MAX_LAB_NAME, is_lab_name
from .record import LabRecord, RecordError


def run_dir() -> Path:
    return Path(os.environ.get("NETLAB_RUN_DIR", "/run/netlab"))




def check_lab_name(lab: str) -> str:
    """A lab name as the loader accepts it; anything else (paths, '..') never reaches the disk."""
    if not is_lab_name(lab):
        raise InputError(f"{lab!r} is not a lab name: lab names are DNS-1123 labels of at most "
                         f"{MAX_LAB_NAME} characters (see `netlab status`)")
    return lab


def lab_dir(lab: str) -> Path:
    return run_dir() / check_lab_name(lab)


def state_path(lab: str) -> Path:
    return lab_dir(lab) / "state.json"


def load(lab: str) -> LabRecord | None:
    try:
        return LabRecord.from_json(json.loads(state_path(lab).read_text()))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError, RecordError) as err:
        print(f"netlab: ignoring unreadable state {state_path(lab)}: {err}", file=sys.stderr)
        return None


def save(lab: str, record: LabRecord) -> None:
    path = state_path(lab)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record.to_json(), indent=1, sort_keys=True))
    os.replace(tmp, path)


def labs() -> list[str]:
    try:
        return sorted(p.name for p in run_dir().iterdir() if (p / "state.json").exists())
    except FileNotFoundError:
        return []


def remove(lab: str) -> None:
    """Drop the lab's directory (the caller holds the lock), and the run dir if now empty."""
    shutil.rmtree(lab_dir(lab), ignore_errors=True)
    try:
        run_dir().rmdir()
    except OSError:
        pass


@contextmanager
def locked(lab: str, wait: bool = True) -> Iterator[None]:
    """Serialize up/down of one lab. Other labs are not blocked."""
    announced = False
    while True:
        directory = lab_dir(lab)
        directory.mkdir(parents=True, exist_ok=True)
        lock = directory / "lock"
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            continue   # removed by a `down` that finished meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                os.close(fd)
                raise NetlabError(f"lab {lab!r} is busy: another netlab up/down is working on it; "
                                  "try again when it has finished")
            if not announced:
                print(f"netlab: waiting for another netlab working on lab {lab!r}", file=sys.stderr)
                announced = True
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)   # the lab was removed while we waited: lock the new directory
    try:
        yield
    finally:
        if not state_path(lab).exists():
            remove(lab)   # nothing was recorded (refused, or nothing to do): leave no lock file behind
        os.close(fd)
