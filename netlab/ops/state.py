"""Lab state under /run/netlab/<lab>/: state.json, container logs, and the lab's lock.

The state file is a record, not the source of truth: ownership is proven by the mark on
each namespace (see netlab.inventory). NETLAB_RUN_DIR moves the directory (tests).
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import stat
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import InputError, NetlabError
from ..names import MAX_LAB_NAME, is_lab_name
from .record import LabRecord, RecordError


RUN_DIR = "/run/netlab"


def run_dir() -> Path:
    """/run/netlab, or NETLAB_RUN_DIR (tests) when that is a directory of this user's, mode 0700
    (or not there yet: made so). A run directory others can write to would let them plant state."""
    custom = os.environ.get("NETLAB_RUN_DIR")
    if not custom:
        return Path(RUN_DIR)
    try:
        st = os.lstat(custom)
    except FileNotFoundError:
        return Path(custom)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise NetlabError(f"NETLAB_RUN_DIR={custom} is not a directory owned by this user with mode 0700 "
                          f"(it is {'a directory' if stat.S_ISDIR(st.st_mode) else 'not a directory'}, "
                          f"owner uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o}); netlab keeps its "
                          "state only where no one else can write: fix it (chmod 700) or unset the variable")
    return Path(custom)


def _private_dir(path: Path) -> None:
    """Make `path` (and a missing run directory above it) mode 0700; refuse a symlink or a
    directory of someone else's."""
    for folder in ([run_dir(), path] if path != run_dir() else [path]):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            st = os.lstat(folder)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
                raise NetlabError(f"{folder} is not a directory of this user's (a symlink?): netlab will not "
                                  "keep its state there; remove it")
            if st.st_mode & 0o077:
                os.chmod(folder, 0o700)   # made by an older netlab with 0755




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
        fd = os.open(state_path(lab), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            return LabRecord.from_json(json.loads(f.read()))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError, RecordError) as err:
        print(f"netlab: ignoring unreadable state {state_path(lab)}: {err}", file=sys.stderr)
        return None


def save(lab: str, record: LabRecord) -> None:
    path = state_path(lab)
    _private_dir(path.parent)
    tmp = path.with_suffix(".tmp")
    try:
        os.unlink(tmp)   # a leftover (or a planted link): never written through
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(record.to_json(), indent=1, sort_keys=True))
    os.replace(tmp, path)


def labs() -> list[str]:
    try:
        return sorted(p.name for p in run_dir().iterdir() if (p / "state.json").exists())
    except FileNotFoundError:
        return []


REMOVERS = 8   # threads emptying the pods' folders of a lab of several nodes


def pods_dir(lab: str, node: str) -> Path:
    """The folder of a node's pods' files: each pod's hosts and resolv.conf, and the working folders of
    its containers. One folder a node: a big lab's files go from several threads, each emptying its
    own folder (on a disk-backed /run, unlinks in one folder wait for each other: 20,000 files took
    0.97 s from 8 threads in one folder, 0.48 s in 100)."""
    return lab_dir(lab) / "pods" / node


def _empty(folder: str) -> None:
    """Remove what a node's pods folder holds: files unlinked, folders removed with what they hold
    (a symlink is unlinked, never followed)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def remove(lab: str) -> None:
    """Drop the lab's directory (the caller holds the lock), and the run dir if now empty. The pods'
    files go first, from several threads (a node's folder each) when the lab has several nodes."""
    folder = lab_dir(lab)
    try:
        nodes = [e.path for e in os.scandir(folder / "pods") if e.is_dir(follow_symlinks=False)]
    except OSError:
        nodes = []
    if len(nodes) > 1:
        from concurrent.futures import ThreadPoolExecutor   # lazily: only labs of several nodes
        with ThreadPoolExecutor(REMOVERS) as pool:
            list(pool.map(_empty, nodes))
    shutil.rmtree(folder, ignore_errors=True)
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
        _private_dir(directory)
        lock = directory / "lock"
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
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
