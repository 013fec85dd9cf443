"""Results for people (a rich table, a PNG) and for scripts (the contract's JSON)."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ...errors import NetlabError
from .paths import BASELINE_BACKEND, PathKind
from .session import BenchRun, Result

PLOT_HINT = "--plot needs matplotlib: pip install netlab-k8s[plot]"
PATH_ORDER = {PathKind.BASELINE.value: 0, PathKind.SAME_NODE.value: 1, PathKind.CROSS_NODE.value: 2}


def ratio(result: Result, results: list[Result]) -> float | None:
    """The figure as a fraction of the baseline's figure for the same test (None: no baseline)."""
    base = next((r for r in results if r.path == PathKind.BASELINE.value and r.test == result.test), None)
    if base is None or not base.measurement.value:
        return None
    return round(result.measurement.value / base.measurement.value, 3)


def work(result: Result) -> tuple[float, str]:
    """What the figure amounts to over the run: transactions, or gigabits moved."""
    m = result.measurement
    return m.value * m.duration, ("Gbit" if m.unit == "Gbit/s" else "trans")


def host_cost(result: Result) -> tuple[float, str]:
    """The machine's busy CPU time per unit of work: µs per transaction, or ms per gigabit."""
    amount, unit = work(result)
    if not amount:
        return 0.0, ""
    if unit == "Gbit":
        return result.measurement.host_cpu / amount * 1e3, "ms/Gbit"
    return result.measurement.host_cpu / amount * 1e6, "µs/trans"


def ordered(run: BenchRun) -> list[Result]:
    """Tests in the order asked; in each: the baseline, every backend's same-node, every backend's cross-node."""
    tests = [t.value for t in run.options.tests]
    backends = [BASELINE_BACKEND] + [b.value for b in run.options.backends]
    return sorted(run.results, key=lambda r: (tests.index(r.test) if r.test in tests else 9,
                                              PATH_ORDER.get(r.path, 9),
                                              backends.index(r.backend) if r.backend in backends else 9))


def rows(run: BenchRun) -> list[dict]:
    """One object per figure: the contract's keys first, then ours."""
    out = []
    for r in ordered(run):
        m = r.measurement
        amount, unit = work(r)
        out.append({
            "backend": r.backend, "path": r.path, "test": r.test, "value": m.value, "unit": m.unit,
            "ratio": ratio(r, run.results),
            "cpu_seconds": round(m.client_cpu + m.server_cpu, 3),
            "client_cpu_seconds": round(m.client_cpu, 3), "server_cpu_seconds": round(m.server_cpu, 3),
            "host_cpu_seconds": round(m.host_cpu, 3), "seconds": round(m.seconds, 3),
            "work": round(amount, 3), "work_unit": unit,
            "parallel": m.flows, "errors": m.errors, "tool": m.tool})
    return out


def as_json(run: BenchRun, machine: dict) -> dict:
    o = run.options
    return {"results": rows(run),
            "settings": {"backends": [b.value for b in o.backends], "tests": [t.value for t in o.tests],
                         "duration": o.duration, "parallel": o.parallel},
            "machine": machine}


def print_table(console: Console, run: BenchRun, machine: dict) -> None:
    o = run.options
    table = Table(title=f"netlab bench — {o.duration}s per figure, {o.parallel} parallel, "
                        f"{machine['cpus']} CPUs, kernel {machine['kernel']}")
    for col, justify in (("test", "left"), ("backend", "left"), ("path", "left"), ("value", "right"),
                         ("unit", "left"), ("× baseline", "right"), ("CPU s client+server", "right"),
                         ("host CPU s", "right"), ("host CPU per unit", "right")):
        table.add_column(col, justify=justify)
    previous = None
    for r in ordered(run):
        m = r.measurement
        share = ratio(r, run.results)
        if previous is not None and r.test != previous:
            table.add_section()
        previous = r.test
        value = f"{m.value:,.2f}" if m.unit == "Gbit/s" else f"{m.value:,.0f}"
        table.add_row(r.test, r.backend, r.path, value, m.unit, "-" if share is None else f"{share:.2f}",
                      f"{m.client_cpu + m.server_cpu:.2f} ({m.client_cpu:.2f}+{m.server_cpu:.2f})",
                      f"{m.host_cpu:.2f}", "{:.1f} {}".format(*host_cost(r)))
    console.print(table)


def require_matplotlib() -> None:
    """Called before measuring, so a missing matplotlib is said at once, not after the run."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as err:
        raise NetlabError(PLOT_HINT) from err


def plot(run: BenchRun, machine: dict, path: str) -> None:
    """Grouped bars per test (groups: paths, bars: backends); below each, the CPU it cost."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise NetlabError(PLOT_HINT) from err
    tests = list(dict.fromkeys(r.test for r in ordered(run)))
    backends = list(dict.fromkeys(r.backend for r in ordered(run)))
    colors = {b: f"C{i}" for i, b in enumerate(backends)}
    fig, axes = plt.subplots(2, len(tests), figsize=(5 * len(tests), 7), squeeze=False)
    for col, test in enumerate(tests):
        results = [r for r in ordered(run) if r.test == test]
        groups = list(dict.fromkeys(r.path for r in results))
        width = 0.8 / max(len([r for r in results if r.path == g]) for g in groups)
        for g, group in enumerate(groups):
            members = [r for r in results if r.path == group]
            for i, r in enumerate(members):     # centred on the group: no gap for an absent backend
                x = g + (i - (len(members) - 1) / 2) * width
                m = r.measurement
                bars = axes[0][col].bar(x, m.value, width, color=colors[r.backend], label=r.backend)
                axes[0][col].bar_label(bars, labels=[_short(m.value)], fontsize=7)
                axes[1][col].bar(x, m.client_cpu + m.server_cpu, width, color=colors[r.backend])
        unit = results[0].measurement.unit
        axes[0][col].set_title(test)
        axes[0][col].set_ylabel(unit)
        axes[1][col].set_ylabel("CPU s (client+server)")
        for row in (0, 1):
            axes[row][col].set_xticks(range(len(groups)), groups)
    handles: dict = {}
    for ax in axes[0]:
        handles.update({label: h for h, label in zip(*ax.get_legend_handles_labels())})
    fig.legend(handles.values(), handles.keys(), loc="upper left", fontsize=8)
    o = run.options
    fig.suptitle(f"netlab bench: {o.duration}s each, {o.parallel} parallel — {machine['cpus']} CPUs "
                 f"({machine['cpu_model']}), kernel {machine['kernel']}", fontsize=9)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except OSError as err:
        raise NetlabError(f"could not write the plot to {path}: {err.strerror or err}") from err
    finally:
        plt.close(fig)


def _short(value: float) -> str:
    return f"{value / 1000:.1f}k" if value >= 1000 else f"{value:.2f}"
