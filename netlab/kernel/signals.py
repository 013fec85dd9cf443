"""SIGTERM and SIGHUP handled like Ctrl-C, and clean-ups that no signal interrupts."""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager, suppress
from typing import Iterator

STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _later(signum: int, frame: object) -> None:
    """After the first stop: netlab is already stopping (rolling back); further ones wait."""


_stopping = False   # a stop signal came: netlab is on its way out (exit 130)


def _interrupt(signum: int, frame: object) -> None:
    global _stopping
    _stopping = True
    for sig in STOPS:   # from here on, a second signal cannot cut the clean-up short
        if signal.getsignal(sig) is not signal.SIG_IGN:   # an ignored one stays ignored, through the exit
            signal.signal(sig, _later)
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def stops_as_interrupts() -> Iterator[None]:
    """Inside: Ctrl-C, SIGTERM and SIGHUP raise KeyboardInterrupt, once, so `up` rolls back a new
    lab and `down` stops cleanly instead of dying half-way; later ones are ignored while that
    clean-up runs (only in the main thread), and until the process exits: a second signal just
    after a quick rollback must not kill netlab on its way out."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # a signal the caller ignores (SIGINT of a background job) stays ignored
    old = {sig: signal.signal(sig, _interrupt) for sig in STOPS if signal.getsignal(sig) is not signal.SIG_IGN}
    # one it handles but inherited blocked (a CI service's mask) would never arrive: netlab takes it
    signal.pthread_sigmask(signal.SIG_UNBLOCK, old)
    try:
        yield
    finally:
        for sig, handler in old.items():
            # after a stop, netlab is on its way out (130): later stops stay off through the exit (SIG_IGN:
            # the interpreter resets Python handlers to the default, killing, action as it finalizes)
            signal.signal(sig, signal.SIG_IGN if _stopping else handler)


@contextmanager
def shielded(reraise: bool = True) -> Iterator[None]:
    """Inside: Ctrl-C, SIGTERM and SIGHUP wait until the block is done (a rollback, a removal
    finishes); one that came meanwhile is raised afterwards (reraise) or dropped (a rollback is
    already the answer to it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    old = {sig: signal.signal(sig, lambda signum, frame: pending.append(signum)) for sig in STOPS}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    if pending and reraise:
        raise KeyboardInterrupt(signal.Signals(pending[0]).name)


def as_exec_expects() -> None:
    """In a child about to exec (a tool, a daemon, tcpdump): every signal unblocked and at its
    default action, as a process manager starts a process (runc, systemd). Otherwise what netlab
    inherited or set reaches the program: Python ignores SIGPIPE, a background job ignores
    SIGINT, a CI runner may block it — and a tcpdump would never see its stop."""
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    for sig in signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}:
        with suppress(OSError, ValueError):   # numbers the C library keeps for itself
            signal.signal(sig, signal.SIG_DFL)
