"""The kernel change's story as one reproducible study: ``napikit study``.

SEED-LO, SEED-RPS and SEED-RT (:data:`napikit.scenarios.SCALABLE`) run on several CPU
counts, under every installed policy plus the RFC variant, at offered loads relative to
a measured capacity: the closed-loop throughput of the classic policy on the same
scenario and CPU count. A cyclictest-like SCHED_FIFO task on CPU 1 (the RPS target of
the first pair) measures what the backlog's work does to a real-time user. Each run is
one row of ``study.csv``; :func:`plot` draws the figures from the rows.

The study is deterministic: the same options give a byte-identical CSV, whatever
``jobs`` is. Each finished run is appended to a :class:`Journal` in the output
directory, so an interrupted study loses nothing: the same command continues it.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import attrs
from attrs import field, frozen

import napikit
from napikit import scenarios
from napikit.config import Config, Cyclictest, LoopbackUdp
from napikit.errors import ConfigError, NapikitError
from napikit.plugins import registry
from napikit.results import Result
from napikit.simulation import simulate
from napikit.values import BASELINE, RFC_VARIANT, at_least_one

#: CPU counts of the full study.
NCPUS = (2, 4, 8, 16, 64)
#: Offered load, as a fraction of the scenario's measured capacity.
LOADS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
#: Packets per sender/receiver pair. In overload, a pair's start (empty queues and
#: socket buffer) adds some 2,000 packets' worth to delivered/s: measured on SEED-RPS and
#: SEED-RT, 2 CPUs, it is ~2 % at 100,000 packets per pair, ~12 % at 20,000.
PACKETS_PER_PAIR = 100_000
#: The small grid of ``--quick``: (ncpus, loads, packets per pair).
QUICK = ((2,), (0.75, 1.5), 5_000)
#: The load at which the latency, CPU-time and per-packet plots compare the policies.
PLOT_LOAD = 0.75
#: Cyclictest period: 100 us, so that even a short run gets hundreds of samples.
CYCLICTEST_PERIOD_NS = 100_000
#: Cyclictest sits on the RPS target of pair 0, where the backlog work lands.
CYCLICTEST_CPU = 1

#: The columns of ``study.csv``, in order. ``offered_pps``, ``capacity_pps`` and
#: ``delivered_pps`` are totals over the pairs; ``latency_*`` is send->recv; ``cpu_*``
#: times are summed over CPUs; ``punished_softirq_*`` is softirq time charged to
#: application tasks (on CPU 1, and on all CPUs).
COLUMNS = (
    "scenario", "ncpus", "pairs", "policy", "load", "offered_pps", "capacity_pps",
    "delivered_pps", "arrived", "delivered", "drops", "drops_backlog", "drops_socket",
    "latency_p50_ns", "latency_p90_ns", "latency_p99_ns", "latency_p999_ns",
    "latency_max_ns", "sim_time_ns",
    "cpu_hardirq_ns", "cpu_softirq_ns", "cpu_ksoftirqd_ns", "cpu_backlog_thread_ns",
    "cpu_irq_thread_ns", "cpu_application_ns", "cpu_sched_ns", "cpu_idle_ns",
    "ipis", "context_switches", "ksoftirqd_wakeups", "backlog_thread_wakeups",
    "ipis_per_delivered", "switches_per_delivered",
    "cyclictest_p50_ns", "cyclictest_p99_ns", "cyclictest_max_ns",
    "punished_softirq_cpu1_ns", "punished_softirq_ns",
)
#: CPU-time contexts in the CSV and the plots (``cpuhp`` and ``offline`` stay 0: no
#: hotplug here).
CONTEXTS = ("hardirq", "softirq", "ksoftirqd", "backlog_thread", "irq_thread",
            "application", "sched", "idle")

NCPUS_ALLOWED = "even CPU counts >= 2, comma-separated (e.g. 2,4,8,16,64)"
LOADS_ALLOWED = "finite numbers > 0, comma-separated (e.g. 0.5,1,1.5)"

Row = dict[str, Any]
Progress = Callable[[int, int, str], None]


# ------------------------------------------------------------------ what runs


@frozen
class Variant:
    """A policy and its options, as one line of the study."""

    policy: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        """``backlog-threads`` or ``backlog-threads fast_path=False``."""
        return " ".join([self.policy, *(f"{k}={v}" for k, v in self.options)])


def installed_variants() -> tuple[Variant, ...]:
    """Every installed policy with its default options, the classic one first, plus the
    RFC variant next to ``backlog-threads``: the lines ``napikit compare`` prints."""
    names = sorted(registry().names(), key=lambda name: (name != BASELINE, name))
    variants = []
    for name in names:
        variants.append(Variant(name))
        if name == RFC_VARIANT[0]:
            variants.append(Variant(*RFC_VARIANT))
    return tuple(variants)


def _ncpus_ok(values: tuple[int, ...]) -> bool:
    return bool(values) and all(
        isinstance(n, int) and n >= 2 and n % 2 == 0 for n in values
    )


def _loads_ok(values: tuple[float, ...]) -> bool:
    return bool(values) and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x < math.inf
        for x in values
    )


def _check(ok: Callable[[Any], bool], allowed: str) -> Callable[[Any, Any, Any], None]:
    def validate(inst: Any, attr: attrs.Attribute, value: Any) -> None:
        if not ok(value):
            raise ConfigError(attr.name, allowed, value)

    return validate


def _sorted_unique(values: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(sorted(set(values)))


@frozen
class Study:
    """The grid a study runs: CPU counts x offered loads x policy variants, on each of
    the SEED scenarios, with ``packets_per_pair`` packets per sender/receiver pair."""

    ncpus: tuple[int, ...] = field(
        default=NCPUS, converter=_sorted_unique, validator=_check(_ncpus_ok, NCPUS_ALLOWED)
    )
    loads: tuple[float, ...] = field(
        default=LOADS, converter=_sorted_unique, validator=_check(_loads_ok, LOADS_ALLOWED)
    )
    packets_per_pair: int = field(
        default=PACKETS_PER_PAIR,
        validator=_check(lambda n: isinstance(n, int) and n >= 1, "an integer >= 1"),
    )
    variants: tuple[Variant, ...] = field(factory=installed_variants, converter=tuple)

    @classmethod
    def quick(cls) -> Study:
        """The small grid of ``napikit study --quick``."""
        ncpus, loads, packets = QUICK
        return cls(ncpus=ncpus, loads=loads, packets_per_pair=packets)

    def runs(self) -> int:
        """How many simulations the study makes (capacity runs included)."""
        cells = len(scenarios.SCALABLE) * len(self.ncpus)
        return cells * (1 + len(self.variants) * len(self.loads))

    def parameters(self) -> dict[str, Any]:
        """What the study's results depend on: its grid, napikit's version and each
        policy's package (a policy's new version may decide otherwise)."""
        reg = registry()
        return {
            "napikit": napikit.__version__,
            "ncpus": list(self.ncpus),
            "loads": list(self.loads),
            "packets_per_pair": self.packets_per_pair,
            "variants": [[v.policy, [list(o) for o in v.options], reg.get(v.policy).package]
                         for v in self.variants],
        }


class Journal:
    """The finished runs of one study in ``out``, one JSON line each, appended and
    flushed as each run ends: a rerun reads them back instead of running them again.

    The file is named after a digest of :meth:`Study.parameters`, and its first line
    holds them, so another study's runs (other loads, another napikit) are never mixed
    in. :func:`run` removes it once the study's files are written.
    """

    def __init__(self, out: Path, study: Study) -> None:
        header = json.dumps({"study": study.parameters()}, sort_keys=True) + "\n"
        self.path = journal_path(out, study)
        #: ``key -> value`` of every finished run: see :func:`run_study`.
        self.done: dict[tuple[Any, ...], Any] = {}
        try:
            out.mkdir(parents=True, exist_ok=True)
            lines = self.path.read_text().splitlines(keepends=True) if self.path.exists() else []
            kept = [header]
            if lines[:1] == [header]:
                for line in lines[1:]:
                    try:
                        entry = json.loads(line) if line.endswith("\n") else None
                    except ValueError:
                        entry = None
                    if entry is None:  # torn by a kill in mid-write: what follows is lost
                        break
                    self.done[tuple(entry["key"])] = entry["value"]
                    kept.append(line)
            self.path.write_text("".join(kept))
            self._file = self.path.open("a")
        except OSError as e:
            raise NapikitError(
                f"--out: must be a directory napikit can write to (got {str(out)!r}: "
                f"{e.strerror})"
            ) from None

    def record(self, key: tuple[Any, ...], value: Any) -> None:
        """Keep one finished run's ``value`` under ``key``, on disk at once."""
        self.done[key] = value
        self._file.write(json.dumps({"key": list(key), "value": value}) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def journal_path(out: Path, study: Study) -> Path:
    """Where :class:`Journal` keeps ``study``'s finished runs in ``out``."""
    text = json.dumps(study.parameters(), sort_keys=True)
    return out / f"study-journal-{hashlib.sha256(text.encode()).hexdigest()[:16]}.jsonl"


def run_config(
    scenario: str, ncpus: int, variant: Variant, packets_per_pair: int,
    rate_pps: float | None,
) -> Config:
    """The configuration of one study run: ``scenarios.at_ncpus(scenario, ncpus)`` with
    each sender offering ``rate_pps`` (``None``: closed loop), ``packets_per_pair``
    packets per pair, and a cyclictest on CPU 1 every 100 us."""
    base = scenarios.at_ncpus(scenario, ncpus)
    # A SEED scenario's workloads are its LoopbackUdp pairs (isinstance: for mypy).
    pairs = tuple(
        attrs.evolve(w, rate_pps=rate_pps) for w in base.workloads if isinstance(w, LoopbackUdp)
    )
    cyclictest = Cyclictest(cpu=CYCLICTEST_CPU, period_ns=CYCLICTEST_PERIOD_NS)
    return base.evolve(
        workloads=(*pairs, cyclictest),
        packets=packets_per_pair * len(pairs),
        policy=variant.policy,
        policy_options=dict(variant.options),
    )


# ------------------------------------------------------------------ running


def run_study(
    study: Study, jobs: int = 1, progress: Progress | None = None,
    journal: Journal | None = None,
) -> list[Row]:
    """Run ``study`` on ``jobs`` processes; the CSV rows, in grid order.

    First the capacity of each (scenario, CPU count): the closed-loop run of the
    classic policy. Then every variant at every load, each sender offering
    ``load * capacity / pairs`` packets/s. ``progress(done, total, what)`` is called
    after each run. With a ``journal``, the runs it holds are read back, not run, and
    each run that finishes is recorded in it.
    """
    baseline = Variant(BASELINE)
    total = study.runs()
    done = 0
    finished = journal.done if journal is not None else {}

    def report(what: str, runs: int = 1) -> None:
        nonlocal done
        done += runs
        if progress is not None and runs:
            progress(done, total, what)

    def pending(tasks: list[tuple[tuple[Any, ...], Config]]) -> list[tuple[Any, Config]]:
        todo = [(key, config) for key, config in tasks if key not in finished]
        if journal is not None:
            report(f"{len(tasks) - len(todo)} runs read back from {journal.path}",
                   len(tasks) - len(todo))
        return todo

    record = journal.record if journal is not None else finished.__setitem__

    # Every configuration is built (and validated) before the first run; the biggest
    # go first so that the last runs to finish are short ones.
    cells = sorted(
        ((s, n) for s in scenarios.SCALABLE for n in study.ncpus), key=lambda c: -c[1]
    )
    closed = [
        (("capacity", s, n), run_config(s, n, baseline, study.packets_per_pair, None))
        for s, n in cells
    ]
    for (_, s, n), result in map_runs(pending(closed), jobs):
        record(("capacity", s, n), result.delivered_pps)
        report(f"{s} ncpus={n} {baseline.label} closed loop (capacity)")

    grid = []
    variants = {v.label: v for v in study.variants}
    for s, n in cells:
        capacity = finished["capacity", s, n]
        for load in study.loads:
            rate = load * capacity / (n // 2)
            for v in study.variants:
                config = run_config(s, n, v, study.packets_per_pair, rate)
                grid.append((("run", s, n, v.label, load), config))
    for (_, s, n, label, load), result in map_runs(pending(grid), jobs):
        record(("run", s, n, label, load),
               row(s, n, variants[label], load, finished["capacity", s, n], result))
        report(f"{s} ncpus={n} {label} load={load:g}")

    order = {
        "scenario": {s: i for i, s in enumerate(scenarios.SCALABLE)},
        "policy": {v.label: i for i, v in enumerate(study.variants)},
    }
    rows = [finished[key] for key, _ in grid]
    rows.sort(key=lambda r: (order["scenario"][r["scenario"]], r["ncpus"],
                             order["policy"][r["policy"]], r["load"]))
    return rows


def _simulate(task: tuple[Any, Config]) -> tuple[Any, Result]:
    key, config = task
    return key, simulate(config)


def map_runs(tasks: Sequence[tuple[Any, Config]], jobs: int) -> Iterator[tuple[Any, Result]]:
    """``(key, result)`` of each ``(key, config)``, in completion order."""
    if jobs == 1 or len(tasks) <= 1:
        yield from map(_simulate, tasks)
        return
    # Ctrl-C reaches the terminal's whole process group, but only this process should
    # answer it (leaving the pool terminates the workers): they start with SIGINT
    # ignored, which a spawned interpreter inherits and keeps.
    ignored = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        # spawn: the same behaviour on every OS, and no fork of a process holding threads.
        pool = multiprocessing.get_context("spawn").Pool(min(jobs, len(tasks)))
    finally:
        signal.signal(signal.SIGINT, ignored)
    with pool:
        yield from pool.imap_unordered(_simulate, tasks)


def row(
    scenario: str, ncpus: int, variant: Variant, load: float, capacity_pps: float,
    result: Result,
) -> Row:
    """One CSV row: the run's figures (:data:`COLUMNS`)."""
    lat = result.latency_send_recv
    (cyclictest,) = result.cyclictest_latency
    cpu = {c: sum(getattr(t, c) for t in result.cpu_time) for c in CONTEXTS}
    delivered = max(1, result.delivered)
    return {
        "scenario": scenario,
        "ncpus": ncpus,
        "pairs": ncpus // 2,
        "policy": variant.label,
        "load": float(load),
        "offered_pps": round(load * capacity_pps, 3),
        "capacity_pps": capacity_pps,
        "delivered_pps": result.delivered_pps,
        "arrived": result.arrived,
        "delivered": result.delivered,
        "drops": result.drops.total,
        "drops_backlog": result.drops.backlog,
        "drops_socket": result.drops.socket,
        "latency_p50_ns": lat.p50_ns,
        "latency_p90_ns": lat.p90_ns,
        "latency_p99_ns": lat.p99_ns,
        "latency_p999_ns": lat.p999_ns,
        "latency_max_ns": lat.max_ns,
        "sim_time_ns": result.sim_time_ns,
        **{f"cpu_{c}_ns": cpu[c] for c in CONTEXTS},
        "ipis": result.ipis,
        "context_switches": result.context_switches,
        "ksoftirqd_wakeups": result.ksoftirqd_wakeups,
        "backlog_thread_wakeups": result.backlog_thread_wakeups,
        "ipis_per_delivered": round(result.ipis / delivered, 6),
        "switches_per_delivered": round(result.context_switches / delivered, 6),
        "cyclictest_p50_ns": cyclictest.p50_ns,
        "cyclictest_p99_ns": cyclictest.p99_ns,
        "cyclictest_max_ns": cyclictest.max_ns,
        "punished_softirq_cpu1_ns": result.punished_softirq_ns(CYCLICTEST_CPU),
        "punished_softirq_ns": result.punished_softirq_ns(),
    }


def write_csv(rows: Sequence[Row], path: Path) -> None:
    """Write ``rows`` to ``path`` as CSV with a header (``\\n`` line ends)."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


# ------------------------------------------------------------------ plots

#: The plots :func:`plot` writes, with what each shows.
PLOTS = {
    "throughput.png": "delivered against offered packets/s per pair, per policy",
    "latency.png": f"send->recv latency percentiles at load {PLOT_LOAD}",
    "cpu_time.png": f"CPU time by context at load {PLOT_LOAD}",
    "per_packet.png": f"IPIs and context switches per delivered packet at load {PLOT_LOAD}",
    "rt_users.png": "cyclictest p99 and softirq time charged to tasks on CPU 1",
}
_TITLES = {"seed-lo": "SEED-LO", "seed-rps": "SEED-RPS", "seed-rt": "SEED-RT"}
_MARKERS = "osD^vP*Xh<>"
_CONTEXT_COLORS = {
    "hardirq": "#d62728", "softirq": "#ff7f0e", "ksoftirqd": "#bcbd22",
    "backlog_thread": "#9467bd", "irq_thread": "#8c564b", "application": "#1f77b4",
    "sched": "#e377c2", "idle": "#e8e8e8",
}
MATPLOTLIB_MISSING = "napikit study needs matplotlib: pip install 'napikit[study]'"


def require_matplotlib() -> None:
    """Fail with a one-line :class:`NapikitError` unless matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise NapikitError(MATPLOTLIB_MISSING) from None


def plot(rows: Sequence[Row], out: Path) -> list[Path]:
    """Draw :data:`PLOTS` from the study's ``rows`` into ``out``; the files written.

    The fixed-load plots use the load nearest :data:`PLOT_LOAD`. All but
    ``per_packet.png`` show the smallest CPU count (``throughput.png`` draws the
    others faint).
    """
    require_matplotlib()
    import matplotlib.style
    from matplotlib.figure import Figure  # no pyplot: no backend, no global state

    data = _Data(rows)
    paths = []
    # The default style whatever the caller's, and no date in the PNG metadata: the
    # same rows draw the same picture.
    with matplotlib.style.context("default"), matplotlib.rc_context(
        {"font.size": 9, "axes.grid": True, "grid.alpha": 0.3}
    ):
        for name, draw in (
            ("throughput.png", _throughput), ("latency.png", _latency),
            ("cpu_time.png", _cpu_time), ("per_packet.png", _per_packet),
            ("rt_users.png", _rt_users),
        ):
            path = out / name
            draw(Figure, data).savefig(path, dpi=110, metadata={"Software": None})
            paths.append(path)
    return paths


class _Data:
    """The rows, indexed for plotting, and one style per policy."""

    def __init__(self, rows: Sequence[Row]) -> None:
        self.policies = list(dict.fromkeys(r["policy"] for r in rows))
        self.scenarios = [s for s in scenarios.SCALABLE if any(r["scenario"] == s for r in rows)]
        self.ncpus = sorted({r["ncpus"] for r in rows})
        self.loads = sorted({r["load"] for r in rows})
        self.small = self.ncpus[0]
        self.load = min(self.loads, key=lambda x: (abs(x - PLOT_LOAD), x))
        self.by_key = {(r["scenario"], r["ncpus"], r["policy"], r["load"]): r for r in rows}

    def get(self, scenario: str, ncpus: int, policy: str, load: float) -> Row:
        return self.by_key[scenario, ncpus, policy, load]

    def style(self, policy: str) -> dict[str, Any]:
        """Colour, marker and size of ``policy``: later policies draw smaller hollow
        markers, so policies with identical figures stay visible as concentric rings."""
        i = self.policies.index(policy)
        return {
            "color": f"C{i % 10}", "marker": _MARKERS[i % len(_MARKERS)],
            "markersize": max(3.0, 10.0 - 1.5 * i), "markerfacecolor": "none",
            "label": policy,
        }


def _finish(fig: Any, title: str, ax: Any) -> Any:
    """Title on top, and ``ax``'s legend once, for all panels, below them."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8,
               frameon=False)
    fig.suptitle(title, fontsize=10)
    legend_in = 0.35 * -(-len(labels) // 6)  # one 0.35-inch row per 6 entries
    fig.tight_layout(rect=(0, legend_in / fig.get_figheight(), 1, 1))
    return fig


def _panels(figure: type, rows: int, cols: int, width: float, height: float,
            **share: Any) -> tuple[Any, Any]:
    """A figure of ``rows`` x ``cols`` panels, each about ``width`` inches wide."""
    fig = figure(figsize=(width * cols, height))
    return fig, fig.subplots(rows, cols, squeeze=False, **share)


def _throughput(figure: type, d: _Data) -> Any:
    fig, axes = _panels(figure, 1, len(d.scenarios), 5, 4.6)
    for ax, s in zip(axes[0], d.scenarios, strict=True):
        top = 0.0
        for p in d.policies:
            st = d.style(p)
            for n in d.ncpus:
                pts = [d.get(s, n, p, x) for x in d.loads]
                pairs = pts[0]["pairs"]
                xs = [r["offered_pps"] / pairs / 1e3 for r in pts]
                ys = [r["delivered_pps"] / pairs / 1e3 for r in pts]
                top = max(top, *xs, *ys)
                if n == d.small:
                    ax.plot(xs, ys, lw=1.4, zorder=3, **st)
                else:
                    ax.plot(xs, ys, lw=0.8, alpha=0.25, color=st["color"], zorder=2)
        cap = d.get(s, d.small, d.policies[0], d.loads[0])["capacity_pps"] / 1e3
        ax.plot([0, top], [0, top], color="grey", ls="--", lw=0.8, label="offered")
        ax.axvline(cap, color="grey", ls=":", lw=0.8)
        ax.text(cap, 0.02 * top, " capacity", color="grey", fontsize=7, rotation=90,
                va="bottom")
        ax.set(title=_TITLES[s], xlabel="offered, k packets/s per pair",
               ylabel="delivered, k packets/s per pair", xlim=(0, top * 1.02),
               ylim=(0, top * 1.02))
    others = [n for n in d.ncpus if n != d.small]
    faint = f"; faint: {', '.join(map(str, others))} CPUs" if others else ""
    return _finish(fig, f"Delivered vs offered load, {d.small} CPUs{faint} (per "
                   f"sender/receiver pair); capacity: closed-loop {d.policies[0]}", axes[0][0])


#: The latency percentiles drawn, bottom to top, one row of the y axis each.
_PERCENTILES = (("latency_p50_ns", "p50"), ("latency_p90_ns", "p90"),
                ("latency_p99_ns", "p99"), ("latency_p999_ns", "p99.9"),
                ("latency_max_ns", "max"))


def _latency(figure: type, d: _Data) -> Any:
    from matplotlib.ticker import LogFormatter

    fig, axes = _panels(figure, 1, len(d.scenarios), 5, 4.2, sharey=True)
    levels = list(range(len(_PERCENTILES)))
    for ax, s in zip(axes[0], d.scenarios, strict=True):
        for p in d.policies:
            r = d.get(s, d.small, p, d.load)
            xs = [max(1.0, r[col] / 1e3) for col, _ in _PERCENTILES]
            # A step per percentile: the CDF as far as these quantiles tell it.
            ax.step(xs, levels, where="post", lw=1.4, **d.style(p))
        ax.set(title=_TITLES[s], xlabel="send->recv latency (us, log scale)", xscale="log")
        # Plain numbers (5, 6, 7) on the minor ticks too: the range is often < 1 decade.
        for axis in (ax.xaxis.set_major_formatter, ax.xaxis.set_minor_formatter):
            axis(LogFormatter(labelOnlyBase=False))
    axes[0][0].set_yticks(levels, [name for _, name in _PERCENTILES])
    axes[0][0].set_ylabel("percentile")
    return _finish(fig, f"Send->recv latency percentiles, {d.small} CPUs, offered load "
                   f"{d.load:g} x capacity", axes[0][0])


def _cpu_time(figure: type, d: _Data) -> Any:
    fig, axes = _panels(figure, 1, len(d.scenarios), 5, 4.8, sharey=True)
    xs = range(len(d.policies))
    for ax, s in zip(axes[0], d.scenarios, strict=True):
        bottom = [0.0] * len(d.policies)
        runs = [d.get(s, d.small, p, d.load) for p in d.policies]
        totals = [sum(r[f"cpu_{c}_ns"] for c in CONTEXTS) or 1 for r in runs]
        for c in CONTEXTS:
            share = [100 * r[f"cpu_{c}_ns"] / t for r, t in zip(runs, totals, strict=True)]
            ax.bar(xs, share, bottom=bottom, color=_CONTEXT_COLORS[c],
                   label=c.replace("_", " "), edgecolor="white", lw=0.3)
            bottom = [b + v for b, v in zip(bottom, share, strict=True)]
        ax.set_xticks(list(xs), d.policies, rotation=30, ha="right", fontsize=7)
        ax.set(title=_TITLES[s], ylim=(0, 100))
    axes[0][0].set_ylabel(f"% of the time of all {d.small} CPUs")
    return _finish(fig, f"CPU time by context, {d.small} CPUs, offered load {d.load:g} x "
                   "capacity", axes[0][0])


def _per_packet(figure: type, d: _Data) -> Any:
    metrics = (("ipis_per_delivered", "IPIs per delivered packet"),
               ("switches_per_delivered", "context switches per delivered packet"))
    fig, axes = _panels(figure, len(metrics), len(d.scenarios), 5, 7, sharey="row")
    for i, (col, label) in enumerate(metrics):
        for ax, s in zip(axes[i], d.scenarios, strict=True):
            for p in d.policies:
                ys = [d.get(s, n, p, d.load)[col] for n in d.ncpus]
                ax.plot(d.ncpus, ys, lw=1.4, **d.style(p))
            ax.set(xscale="log", xlabel="CPUs")
            ax.set_xticks(d.ncpus, [str(n) for n in d.ncpus])
            ax.minorticks_off()
            if i == 0:
                ax.set_title(_TITLES[s])
        axes[i][0].set_ylabel(label)
    return _finish(fig, f"Cost per delivered packet, offered load {d.load:g} x capacity",
                   axes[0][0])


def _rt_users(figure: type, d: _Data) -> Any:
    shown = [s for s in ("seed-rps", "seed-rt") if s in d.scenarios]
    metrics = (
        (lambda r: r["cyclictest_p99_ns"] / 1e3, "cyclictest p99 wake-up latency (us)"),
        (lambda r: 100 * r["punished_softirq_cpu1_ns"] / max(1, r["sim_time_ns"]),
         "softirq charged to tasks on CPU 1 (% of its time)"),
    )
    fig, axes = _panels(figure, len(metrics), len(shown), 5.5, 7, sharey="row")
    for i, (value, label) in enumerate(metrics):
        for ax, s in zip(axes[i], shown, strict=True):
            for p in d.policies:
                ys = [value(d.get(s, d.small, p, x)) for x in d.loads]
                ax.plot(d.loads, ys, lw=1.4, **d.style(p))
            ax.set(xlabel="offered load (x capacity)")
            if i == 0:
                ax.set_title(_TITLES[s])
        axes[i][0].set_ylabel(label)
    return _finish(fig, f"A SCHED_FIFO cyclictest on CPU {CYCLICTEST_CPU} (the RPS target), "
                   f"{d.small} CPUs, period {CYCLICTEST_PERIOD_NS // 1000} us", axes[0][0])


# ------------------------------------------------------------------ command


def progress_bar(stream: TextIO | None = None) -> Progress:
    """A textual progress report on ``stream`` (default ``sys.stderr``):
    ``[ 123/540] seed-rps ncpus=16 ...``, redrawn in place on a terminal, one line per
    run otherwise."""
    out = stream or sys.stderr
    tty = out.isatty()

    def show(done: int, total: int, what: str) -> None:
        line = f"[{done:>{len(str(total))}}/{total}] {what}"
        if tty:
            out.write("\r\033[K" + line + ("\n" if done == total else ""))
        else:
            out.write(line + "\n")
        out.flush()

    return show


def run(study: Study, out: Path, jobs: int = 1, plots: bool = True,
        progress: Progress | None = None) -> list[Path]:
    """Run ``study`` and write ``study.csv`` (and, with ``plots``, :data:`PLOTS`) into
    ``out``; the files written."""
    if plots:
        require_matplotlib()  # before minutes of runs, not after
    journal = Journal(out, study)  # also checks that out can be written, before any run
    try:
        rows = run_study(study, jobs=jobs, progress=progress, journal=journal)
    finally:
        journal.close()
    path = out / "study.csv"
    write_csv(rows, path)
    paths = [path, *(plot(rows, out) if plots else [])]
    journal.path.unlink()
    return paths


def _list_type(
    kind: Callable[[str], Any], ok: Callable[[tuple[Any, ...]], bool], allowed: str
) -> Callable[[str], tuple[Any, ...]]:
    def parse(text: str) -> tuple[Any, ...]:
        try:
            values = tuple(kind(part) for part in text.split(","))
        except ValueError:
            values = ()
        if not ok(values):
            raise argparse.ArgumentTypeError(f"must be {allowed} (got {text!r})")
        return values

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``napikit study``."""
    quick_ncpus, quick_loads, quick_packets = QUICK
    parser.add_argument(
        "--out", type=Path, default=Path("study-out"), metavar="DIR",
        help="directory for study.csv and the plots (default study-out)",
    )
    parser.add_argument(
        "--ncpus", type=_list_type(int, _ncpus_ok, NCPUS_ALLOWED), metavar="N,N,...",
        help="CPU counts (default " + ",".join(map(str, NCPUS)) + ")",
    )
    parser.add_argument(
        "--loads", type=_list_type(float, _loads_ok, LOADS_ALLOWED), metavar="X,X,...",
        help="offered loads, as fractions of the capacity (default "
        + ",".join(f"{x:g}" for x in LOADS) + ")",
    )
    parser.add_argument(
        "--packets-per-pair", type=at_least_one, metavar="N",
        help=f"packets per sender/receiver pair (default {PACKETS_PER_PAIR:,})",
    )
    parser.add_argument(
        "--jobs", type=at_least_one, default=os.cpu_count() or 1, metavar="N",
        help="parallel processes (default: the CPU count)",
    )
    parser.add_argument(
        "--quick", action="store_true",
        help=f"a small grid: {quick_ncpus[0]} CPUs, loads "
        + ",".join(map(str, quick_loads)) + f", {quick_packets:,} packets per pair "
        "(the other options override it)",
    )
    parser.add_argument(
        "--no-plots", dest="plots", action="store_false",
        help="write the CSV only (no matplotlib needed)",
    )


def main(args: argparse.Namespace) -> int:
    """``napikit study``: run the study the options describe and write its files."""
    base = Study.quick() if args.quick else Study()
    study = attrs.evolve(base, **{
        name: value for name, value in (
            ("ncpus", args.ncpus), ("loads", args.loads),
            ("packets_per_pair", args.packets_per_pair),
        ) if value is not None
    })
    start = time.monotonic()
    try:
        paths = run(study, args.out, jobs=args.jobs, plots=args.plots, progress=progress_bar())
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"the finished runs are kept in {journal_path(args.out, study)}; "
                                "the same command continues from them") from None
    print(f"napikit study: {study.runs()} runs in {time.monotonic() - start:.0f} s "
          f"on {args.jobs} processes", file=sys.stderr)
    for path in paths:
        print(path)
    return 0
