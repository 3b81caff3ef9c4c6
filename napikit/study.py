"""The kernel change's story as one reproducible study: ``napikit study``.

The study is a shipped sweep file, ``napikit/studies/seed-story.toml`` (:data:`SHIPPED`):
SEED-LO, SEED-RPS and SEED-RT (:data:`napikit.scenarios.SCALABLE`) on several CPU
counts, under every installed policy plus the RFC variant, at offered loads relative to
a measured capacity, the closed-loop throughput of the classic policy on the same
scenario and CPU count (the file's ``[relative]`` table: the capacity runs first, then
the paced ones). A cyclictest-like SCHED_FIFO task on CPU 1 (the RPS target of the
first pair) measures what the backlog's work does to a real-time user. Each paced run
is one row of ``study.csv``; :func:`plot` draws the figures from the rows.

It runs on the sweeps' engine (:mod:`napikit.sweep`): every run is written to the
Parquet dataset ``OUT/runs`` as it finishes, keyed by its fingerprint, so an
interrupted study loses nothing (the same command continues it), and ``--jobs`` or
``--dask`` say where it runs. The same options give a byte-identical CSV, whatever runs
it.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import attrs
from attrs import field, frozen

from napikit import scenarios
from napikit.config import Cyclictest
from napikit.errors import ConfigError, NapikitError
from napikit.plugins import registry
from napikit.sweep import (
    Progress,
    Sweep,
    add_engine_arguments,
    dask_client,
    grid_text,
    loads_sweep,
    progress_bar,
    run_sweep,
    writable_dir,
)
from napikit.values import BASELINE, RFC_VARIANT, at_least_one

#: The study's sweep file, in the package.
SHIPPED = "studies/seed-story.toml"


def shipped() -> Sweep:
    """The :class:`~napikit.sweep.Sweep` of :data:`SHIPPED`."""
    text = resources.files("napikit").joinpath(SHIPPED).read_text(encoding="utf-8")
    return loads_sweep(text, f"napikit/{SHIPPED}")


_SHIPPED = shipped()
_GRID = dict(_SHIPPED.grid)
#: CPU counts of the full study.
NCPUS = tuple(sorted(_GRID["ncpus"]))
#: Offered load, as a fraction of the scenario's measured capacity.
LOADS = tuple(sorted(_GRID["load"]))
#: Packets per sender/receiver pair (the file says why so many).
PACKETS_PER_PAIR = _SHIPPED.packets or 0
#: The small grid of ``--quick``: (ncpus, loads, packets per pair).
QUICK = ((2,), (0.75, 1.5), 5_000)
#: The load at which the latency, CPU-time and per-packet plots compare the policies.
PLOT_LOAD = 0.75
#: Cyclictest period and CPU, as the file adds it (the plots' titles say so).
(_CYCLICTEST,) = _SHIPPED.add_workloads
assert isinstance(_CYCLICTEST, Cyclictest)
CYCLICTEST_PERIOD_NS = _CYCLICTEST.period_ns
CYCLICTEST_CPU = _CYCLICTEST.cpu

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

    def grid_value(self) -> str | dict[str, Any]:
        """The variant as a sweep's ``policy`` grid value."""
        if not self.options:
            return self.policy
        return {"name": self.policy, "options": dict(self.options)}


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
    the SEED scenarios, with ``packets_per_pair`` packets per sender/receiver pair: the
    shipped sweep file with these in place of its own."""

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

    def sweep(self) -> Sweep:
        """The shipped sweep with this study's grid (the most CPUs first, as there)."""
        base = shipped()
        values = {"ncpus": tuple(reversed(self.ncpus)), "load": tuple(map(float, self.loads)),
                  "policy": tuple(v.grid_value() for v in self.variants)}
        return attrs.evolve(base, packets=self.packets_per_pair,
                            grid=tuple((k, values.get(k, v)) for k, v in base.grid))

    def runs(self) -> int:
        """How many simulations the study makes (capacity runs included)."""
        cells = len(_GRID["scenario"]) * len(self.ncpus)
        return cells * (1 + len(self.variants) * len(self.loads))


# ------------------------------------------------------------------ running


def run_study(study: Study, out: Path | None = None, jobs: int = 1, client: Any = None,
              progress: Progress | None = None) -> list[Row]:
    """Run ``study`` (see :func:`napikit.sweep.run_sweep`: the runs already in ``out``
    are read back, each one run is written there); the CSV rows, in the order of the
    scenarios, CPU counts, variants and loads. ``progress(done, total, what)`` is
    called after each run."""
    rows = run_sweep(study.sweep(), out, jobs=jobs, client=client, progress=progress)
    # The rows name a variant as its grid value reads (fast_path=false).
    labels = {grid_text(v.grid_value()): v.label for v in study.variants}
    order = {
        "scenario": {s: i for i, s in enumerate(_GRID["scenario"])},
        "policy": {v.label: i for i, v in enumerate(study.variants)},
    }
    # The paced runs: the capacity runs have no load.
    table = [row(r, labels[r["grid.policy"]]) for r in rows if "grid.load" in r]
    table.sort(key=lambda r: (order["scenario"][r["scenario"]], r["ncpus"],
                              order["policy"][r["policy"]], r["load"]))
    return table


def row(r: Row, policy: str) -> Row:
    """One CSV row (:data:`COLUMNS`) of a paced run's sweep row ``r``; ``policy``: the
    variant's label."""
    ncpus, load = r["grid.ncpus"], r["grid.load"]
    capacity_pps = r["reference.delivered_pps"]
    cpu = {c: sum(r[f"cpu_time.{i}.{c}"] for i in range(ncpus)) for c in CONTEXTS}
    delivered = max(1, r["delivered"])
    return {
        "scenario": r["grid.scenario"],
        "ncpus": ncpus,
        "pairs": ncpus // 2,
        "policy": policy,
        "load": float(load),
        "offered_pps": round(load * capacity_pps, 3),
        "capacity_pps": capacity_pps,
        "delivered_pps": r["delivered_pps"],
        "arrived": r["arrived"],
        "delivered": r["delivered"],
        "drops": r["drops.total"],
        "drops_backlog": r["drops.backlog"],
        "drops_socket": r["drops.socket"],
        **{f"latency_{p}_ns": r[f"latency_send_recv.{p}_ns"]
           for p in ("p50", "p90", "p99", "p999", "max")},
        "sim_time_ns": r["sim_time_ns"],
        **{f"cpu_{c}_ns": cpu[c] for c in CONTEXTS},
        "ipis": r["ipis"],
        "context_switches": r["context_switches"],
        "ksoftirqd_wakeups": r["ksoftirqd_wakeups"],
        "backlog_thread_wakeups": r["backlog_thread_wakeups"],
        "ipis_per_delivered": round(r["ipis"] / delivered, 6),
        "switches_per_delivered": round(r["context_switches"] / delivered, 6),
        **{f"cyclictest_{p}_ns": r[f"cyclictest_latency.0.{p}_ns"]
           for p in ("p50", "p99", "max")},
        "punished_softirq_cpu1_ns": r[f"punished_softirq_ns.{CYCLICTEST_CPU}"],
        "punished_softirq_ns": r["punished_softirq_ns"],
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


def run(study: Study, out: Path, jobs: int = 1, plots: bool = True,
        progress: Progress | None = None, client: Any = None) -> list[Path]:
    """Run ``study`` (its runs kept in ``out/runs``) and write ``study.csv`` (and, with
    ``plots``, :data:`PLOTS`) into ``out``; the files written."""
    if plots:
        require_matplotlib()  # before minutes of runs, not after
    writable_dir(out)  # before any run
    rows = run_study(study, out / "runs", jobs=jobs, client=client, progress=progress)
    path = out / "study.csv"
    write_csv(rows, path)
    return [path, *(plot(rows, out) if plots else [])]


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
        help="directory for study.csv, the plots and the runs' dataset (runs/) "
        "(default study-out)",
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
    add_engine_arguments(parser)
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
        with dask_client(args.dask, args.jobs) as client:
            paths = run(study, args.out, jobs=args.jobs, plots=args.plots,
                        progress=progress_bar(), client=client)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"the finished runs are kept in {args.out / 'runs'}; "
                                "the same command continues from them") from None
    where = f"on {args.dask}" if args.dask else f"on {args.jobs} processes"
    print(f"napikit study: {study.runs()} runs in {time.monotonic() - start:.0f} s {where}",
          file=sys.stderr)
    for path in paths:
        print(path)
    return 0
