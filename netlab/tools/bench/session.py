"""One bench run, top to bottom: tools and kernel checked → baseline → per backend: lab up, measure → removal.

Whatever happens (an error, Ctrl-C, SIGTERM), the finally-block stops every tool and removes
every lab and namespace this run built or reused, unless `keep`; signals are held off while
it cleans up, so a second Ctrl-C cannot leave half a lab behind.
"""
from __future__ import annotations

import os
import platform
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from ...ops import lab as lab_ops
from ...spec import loader
from ...kernel import netns
from ...kernel.privileges import require_privileges
from ...ops import state
from ...ops.record import LabRecord
from ...errors import NetlabError
from ...core.backends import Backend
from ...model.lab import LabFile
from . import baseline, paths, tuning
from .. import bgp
from .paths import BASELINE_BACKEND, PathPair
from .runner import BenchTest, Measurement, Runner, Settings, check_tools


@dataclass(frozen=True)
class BenchOptions:
    """What `netlab bench` is asked: backends, tests, duration, parallel flows, whether to keep the labs,
    and their names' prefix."""

    backends: tuple[Backend, ...]
    tests: tuple[BenchTest, ...]
    duration: int
    parallel: int
    keep: bool = False
    prefix: str = "bench"


@dataclass(frozen=True)
class Result:
    """One measurement with its backend, path kind and test."""

    backend: str
    path: str
    test: str
    measurement: Measurement


@dataclass
class BenchRun:
    """One `netlab bench` run as it goes: its options, the results so far, the labs it built or reused."""

    options: BenchOptions
    results: list[Result] = field(default_factory=list)
    labs: list[str] = field(default_factory=list)        # labs this run built or reused, to remove
    reused: list[str] = field(default_factory=list)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the run is, so the same cleanup as Ctrl-C runs."""


def run(options: BenchOptions, log: Callable[[str], None]) -> BenchRun:
    require_privileges("bench")
    check_tools(list(options.tests))
    labfiles = [_lab_file(options.prefix, backend) for backend in options.backends]
    for labfile in labfiles:     # a backend this kernel cannot build fails now, not after the baseline
        lab_ops.check_kernel(labfile)
        lab_ops.check_programs(lab_ops.make_plan(labfile))
    bench = BenchRun(options)
    runner = Runner(Settings(options.duration, options.parallel), log)
    baseline_lab = paths.lab_name(options.prefix, BASELINE_BACKEND)
    with _sigterm_as_interrupt():
        try:
            log(f"baseline: veth pair {baseline_lab}.client <-> {baseline_lab}.server")
            _measure(bench, runner, baseline.build(baseline_lab), log)
            for labfile in labfiles:
                for pair in _bench_lab(bench, labfile, log):
                    _measure(bench, runner, pair, log)
        finally:
            with _signals_held():
                runner.close()
                _clean_up(bench, baseline_lab, log)
    return bench


def _measure(bench: BenchRun, runner: Runner, pair: PathPair, log: Callable[[str], None]) -> None:
    for test in bench.options.tests:
        m = runner.measure(pair, test)
        bench.results.append(Result(pair.backend, pair.path.value, test.value, m))
        log(f"  {test.value:<10} {pair.label:<22} {m.value:>12,.3f} {m.unit:<8} "
            f"cpu {m.client_cpu + m.server_cpu:6.2f}s (client {m.client_cpu:.2f}, server {m.server_cpu:.2f})")


def _lab_file(prefix: str, backend: Backend) -> LabFile:
    name = paths.lab_name(prefix, backend.value)
    return loader.load_text(paths.lab_text(name, backend.value), f"<netlab bench lab {name}>")


def _bench_lab(bench: BenchRun, labfile: LabFile, log: Callable[[str], None]) -> list[PathPair]:
    """Bring up (or reuse, when identical) the backend's bench lab; its same- and cross-node pairs."""
    name, backend = labfile.lab.name, labfile.lab.backend
    record = state.load(name)
    if record is not None and not _identical(labfile, record):
        raise NetlabError(f"lab {name!r} is up but is not netlab bench's lab for backend {backend.value} "
                          f"(other nodes, pods or backend); nothing was changed — remove it with "
                          f"`netlab down --name {name}` or pick another --lab-prefix")
    bench.labs.append(name)
    if record is not None:
        bench.reused.append(name)
        log(f"{backend.value}: reusing lab {name} (up and identical)")
    else:
        log(f"{backend.value}: building lab {name} (2 nodes, 3 pods)")
        lab_ops.up(labfile)
        record = state.load(name)
        if record is None:
            raise NetlabError(f"lab {name!r} is up but its state could not be read back")
    if backend.value == "bgp":
        _wait_for_bgp(record, log)
    pairs = paths.lab_pairs(labfile, record)
    tuning.tune_client(pairs[0].client.netns)
    return pairs


BGP_BOUND = 60.0   # seconds; BIRD's timers converge a 2-node mesh in about 2


def _wait_for_bgp(record: LabRecord, log: Callable[[str], None]) -> None:
    """Measure only once BIRD has learned the routes: until then cross-node has no route."""
    start = time.monotonic()
    while not bgp.converged(record):
        if time.monotonic() - start > BGP_BOUND:
            raise NetlabError(f"lab {record.name}: BGP sessions not Established after {BGP_BOUND:.0f} s "
                              f"(see `netlab status --name {record.name}`)")
        time.sleep(0.1)
    log(f"bgp: sessions Established and routes learned after {time.monotonic() - start:.1f} s")


def _identical(labfile: LabFile, record: LabRecord) -> bool:
    """The recorded lab is the one planned now, ready, with every namespace present."""
    the_plan = lab_ops.make_plan(labfile)
    planned = {ns.name: ns.fingerprint for ns in the_plan.namespaces}
    return (record.status == "ready" and planned == dict(record.fingerprints)
            and all(os.path.exists(netns.path(n)) for n in planned))


def _clean_up(bench: BenchRun, baseline_lab: str, log: Callable[[str], None]) -> None:
    if bench.options.keep:
        kept = bench.labs + [baseline_lab]
        log("kept (--keep): " + ", ".join(kept) + " — remove with: "
            + " ; ".join(f"netlab down --name {n}" for n in kept))
        return
    failures = []
    for name in bench.labs:
        try:
            lab_ops.down(name)
        except (NetlabError, OSError) as err:
            failures.append(f"{name}: {err}")
    try:
        baseline.remove(baseline_lab)   # only when it is the bench's baseline, never a lab of that name
    except baseline.NotABaseline:
        pass                            # said already when the run began; not the bench's to remove
    except (NetlabError, OSError) as err:
        failures.append(f"{baseline_lab}: {err}")
    if failures:
        raise NetlabError("netlab bench could not remove everything it built: " + "; ".join(failures)
                          + " — run `netlab down --all`")


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def interrupt(signum, frame):
        raise Terminated()
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block is done (then arrive as usual)."""
    held = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def machine() -> dict:
    """What the figures were measured on."""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "machine": platform.machine()}
