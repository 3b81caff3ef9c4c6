"""Where the kernel change's four claims hold (docs/kernel-model.md A.4).

The claims are comparisons between policies on the SEED scenarios. At napikit's default
costs they hold (``tests/test_claims.py``), but one operating point says little: every
cost scaled together, or N/2 independent pairs on N CPUs, leave every ratio as it was.
This module evaluates each claim at a :class:`Point` that moves what can change the
answer: the cost of IPIs, of the protocol receive and of the application (``sendmsg``,
``recvmsg``) and of switches and wake-ups, each relative to the rest; the offered load;
and the number of sender/receiver pairs and how their flows share CPUs. A map is a grid
of points over two of those axes; :func:`plot` draws one panel per claim and map, with a
calibrated host's position marked.

The claims, as checked (the thresholds of ``tests/test_claims.py``):

1. SEED-LO: backlog threads without the local fast path deliver under 0.9x softirq-ipi.
2. SEED-LO: with the fast path, backlog threads are within 5 % of softirq-ipi.
3. SEED-RPS: softirq-ipi and backlog threads are within 15 % of each other, and each
   delivers at least 1 % less than its own SEED-LO figure.
4. SEED-RT: the ksoftirqd policy wakes ksoftirqd for the backlog work RPS triggers;
   backlog threads wake none and send no RPS IPI.

A claim that fails somewhere is a result: the map says where, and ``why`` says which
part of it failed.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
from attrs import field, frozen

from napikit.config import Config, CostModel, KernelParams, LoopbackUdp
from napikit.errors import ConfigError, NapikitError
from napikit.results import Result
from napikit.simulation import simulate
from napikit.study import require_matplotlib
from napikit.sweep import map_runs, progress_bar

#: The cost groups a point scales, each relative to the rest.
COST_GROUPS: dict[str, tuple[str, ...]] = {
    "ipi": ("ipi_send_ns", "ipi_latency_ns", "ipi_handler_ns"),
    "protocol": ("protocol_rx_ns",),
    "application": ("udp_sendmsg_ns", "udp_recvmsg_ns"),
    "switch": ("context_switch_ns", "wakeup_ns", "wakeup_latency_ns"),
}
#: How the pairs' flows use the CPUs: each pair's flow steered to its own receiver's
#: CPU (``own``, the shipped scenario), every pair's flow steered to CPU 1 (``shared``:
#: the RPS targets overlap), or 8 flows per pair spread by RPS over every receiver CPU
#: (``spread``).
STEERING = ("own", "shared", "spread")
CLAIMS = (1, 2, 3, 4)
#: Packets per pair at each run of a point (the shipped scenarios run 200,000).
PACKETS_PER_PAIR = 50_000
_CLAIM_TITLES = {
    1: "1: no fast path loses loopback throughput",
    2: "2: the fast path restores it",
    3: "3: IPI and threads within 15 % under RPS",
    4: "4: RT: ksoftirqd woken, threads wake none",
}

_RUNS = {  # (scenario, policy label) -> (scenario kind, policy, options)
    ("lo", "classic"): ("lo", "softirq-ipi", {}),
    ("lo", "threads"): ("lo", "backlog-threads", {}),
    ("lo", "nofast"): ("lo", "backlog-threads", {"fast_path": False}),
    ("rps", "classic"): ("rps", "softirq-ipi", {}),
    ("rps", "threads"): ("rps", "backlog-threads", {}),
    ("rt", "ksoftirqd"): ("rt", "ksoftirqd", {}),
    ("rt", "threads"): ("rt", "backlog-threads", {}),
}


def _positive(name: str):
    def check(inst: object, attr: attrs.Attribute, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                1 / 64 <= value <= 64):
            raise ConfigError(f"claims.{name}", "a number from 1/64 to 64", value)

    return check


def _load(inst: object, attr: attrs.Attribute, value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not 0.01 <= value <= 4):
        raise ConfigError("claims.load", "a fraction of capacity from 0.01 to 4, or none "
                          "(a closed loop)", value)


@frozen
class Point:
    """One operating point. Each ``*_scale`` multiplies its :data:`COST_GROUPS` costs;
    ``load`` paces each sender at that fraction of the point's own capacity (SEED-LO's
    closed-loop softirq-ipi rate per pair; ``None``: closed loop); ``pairs``
    sender/receiver pairs on ``2 * pairs`` CPUs, their flows steered as ``steering``
    says."""

    ipi: float = field(default=1.0, validator=_positive("ipi"))
    protocol: float = field(default=1.0, validator=_positive("protocol"))
    application: float = field(default=1.0, validator=_positive("application"))
    switch: float = field(default=1.0, validator=_positive("switch"))
    load: float | None = field(default=None, validator=_load)
    pairs: int = field(default=1)
    steering: str = field(default="own")

    def __attrs_post_init__(self) -> None:
        if isinstance(self.pairs, bool) or not isinstance(self.pairs, int) or not (
                1 <= self.pairs <= 32):
            raise ConfigError("claims.pairs", "an integer from 1 to 32", self.pairs)
        if self.steering not in STEERING:
            raise ConfigError("claims.steering", "one of " + ", ".join(STEERING),
                              self.steering)

    def costs(self, base: CostModel) -> CostModel:
        """``base`` with each group scaled."""
        changes = {}
        for group, names in COST_GROUPS.items():
            for name in names:
                changes[name] = min(10**10, round(getattr(base, name) * getattr(self, group)))
        return attrs.evolve(base, **changes)


#: The point the shipped scenarios are, and napikit's default costs (frozen values).
DEFAULT_POINT = Point()
DEFAULT_COSTS = CostModel()


@frozen
class Outcome:
    """Whether a claim holds at a point, by how much (``margin`` > 0: it holds, the
    distance to its threshold as a fraction), and which part failed when it does not."""

    claim: int
    holds: bool
    margin: float
    why: str


def scenario(kind: str, point: Point, base: CostModel = DEFAULT_COSTS,
             rate_pps: float | None = None) -> Config:
    """The SEED scenario ``kind`` (``lo``, ``rps`` or ``rt``) at ``point``, paced at
    ``rate_pps`` per sender (``None``: closed loop), before the policy is chosen."""
    pairs = point.pairs
    receivers = tuple(2 * i + 1 for i in range(pairs))
    workloads = []
    for i in range(pairs):
        rps: tuple[int, ...] = ()
        flows = 1
        if kind != "lo":
            rps = {"own": (2 * i + 1,), "shared": (1,), "spread": receivers}[point.steering]
            flows = 8 if point.steering == "spread" else 1
        workloads.append(LoopbackUdp(senders=(2 * i,), receivers=(2 * i + 1,), flows=flows,
                                     rps_cpus=rps, rate_pps=rate_pps))
    return Config(ncpus=2 * pairs, workloads=tuple(workloads),
                  kernel=KernelParams(preempt_rt=kind == "rt"), costs=point.costs(base),
                  packets=PACKETS_PER_PAIR * pairs)


def _configs(point: Point, base: CostModel, rate_pps: float | None) -> dict[tuple, Config]:
    return {
        key: scenario(kind, point, base, rate_pps).evolve(policy=policy,
                                                          policy_options=options)
        for key, (kind, policy, options) in _RUNS.items()
    }


def configs(point: Point, base: CostModel = DEFAULT_COSTS) -> dict[tuple[str, str], Config]:
    """The seven runs that decide the claims at ``point`` (keys as :data:`_RUNS`); with a
    ``load``, after the closed-loop run that gives its capacity."""
    rate = None
    if point.load is not None:
        capacity = simulate(scenario("lo", attrs.evolve(point, load=None), base)
                            .evolve(policy="softirq-ipi")).delivered_pps / point.pairs
        rate = point.load * capacity
    return _configs(point, base, rate)


def judge(runs: dict[tuple[str, str], Result]) -> tuple[Outcome, ...]:
    """The four claims' outcomes from a point's runs (keys as :data:`_RUNS`)."""
    lo_c, lo_t, lo_n = (runs["lo", k].delivered_pps for k in ("classic", "threads", "nofast"))
    rps_c, rps_t = (runs["rps", k].delivered_pps for k in ("classic", "threads"))
    rt_k, rt_t = runs["rt", "ksoftirqd"], runs["rt", "threads"]
    out = []
    ratio = lo_n / lo_c
    out.append(Outcome(1, ratio < 0.9, 0.9 - ratio,
                       "" if ratio < 0.9 else f"no fast path delivers {ratio:.2f}x"))
    dev = abs(lo_t / lo_c - 1)
    out.append(Outcome(2, dev <= 0.05, 0.05 - dev,
                       "" if dev <= 0.05 else f"fast path off by {dev:.1%}"))
    dev = max(abs(rps_t / rps_c - 1), abs(rps_c / rps_t - 1))
    below = min(1 - rps_c / lo_c, 1 - rps_t / lo_t)
    why = []
    if dev > 0.15:
        why.append(f"IPI and threads {dev:.0%} apart")
    # "below" by at least 1 %: paced under capacity, both deliver the offered load and
    # which is higher is noise
    if below < 0.01:
        why.append("RPS not below RPS off")
    out.append(Outcome(3, not why, min(0.15 - dev, below - 0.01), "; ".join(why)))
    woken, clean = rt_k.ksoftirqd_wakeups > 0, rt_t.ksoftirqd_wakeups == 0 == rt_t.ipis
    why4 = [w for w, bad in (("ksoftirqd not woken", not woken),
                             ("threads woke ksoftirqd or sent IPIs", not clean)) if bad]
    out.append(Outcome(4, not why4, 1.0 if not why4 else -1.0, "; ".join(why4)))
    return tuple(out)


def evaluate_many(points: Sequence[Point], base: CostModel = DEFAULT_COSTS, jobs: int = 1,
                  progress: Any = None) -> list[tuple[Outcome, ...]]:
    """The outcomes at each point, in order. A point with a ``load`` first runs its
    closed-loop SEED-LO under softirq-ipi for the capacity it is a fraction of."""
    capacity: dict[int, float] = {}
    closed: list[tuple[Any, Config]] = [
        (i, scenario("lo", attrs.evolve(p, load=None), base).evolve(policy="softirq-ipi"))
        for i, p in enumerate(points) if p.load is not None]
    total = len(closed) + len(points) * len(_RUNS)
    done = 0
    for i, r in map_runs(closed, jobs):
        capacity[i] = r.delivered_pps / points[i].pairs
        done += 1
        if progress:
            progress(done, total, "capacity")
    tasks: list[tuple[Any, Config]] = []
    for i, p in enumerate(points):
        rate = None if p.load is None else p.load * capacity[i]
        tasks += [((i, key), c) for key, c in _configs(p, base, rate).items()]
    runs: dict[int, dict] = {i: {} for i in range(len(points))}
    for (i, key), r in map_runs(tasks, jobs):
        runs[i][key] = r
        done += 1
        if progress:
            progress(done, total, "claims")
    return [judge(runs[i]) for i in range(len(points))]


def evaluate(point: Point = DEFAULT_POINT,
             base: CostModel = DEFAULT_COSTS) -> tuple[Outcome, ...]:
    """The four claims' outcomes at one point."""
    return evaluate_many([point], base)[0]


# ------------------------------------------------------------------ maps

#: The axes a map may use, with the values the README's map takes.
AXES: dict[str, tuple[Any, ...]] = {
    "ipi": (0.25, 0.5, 1.0, 2.0, 4.0),
    "protocol": (0.25, 0.5, 1.0, 2.0, 4.0),
    "application": (0.25, 0.5, 1.0, 2.0, 4.0),
    "switch": (0.25, 0.5, 1.0, 2.0, 4.0),
    "load": (0.25, 0.5, 0.75, 0.9, None),
    "sharing": ((1, "own"), (2, "own"), (2, "shared"), (2, "spread"), (4, "shared")),
}
#: The maps ``napikit claims`` draws: (x axis, y axis).
MAPS = (("ipi", "protocol"), ("ipi", "application"), ("switch", "ipi"), ("load", "sharing"))
QUICK_VALUES: dict[str, tuple[Any, ...]] = {
    "ipi": (0.25, 1.0, 4.0), "protocol": (0.25, 1.0, 4.0), "application": (0.25, 1.0, 4.0),
    "switch": (0.25, 1.0, 4.0), "load": (0.5, None), "sharing": ((1, "own"), (2, "shared")),
}


def _at(point: Point, axis: str, value: Any) -> Point:
    if axis == "sharing":
        return attrs.evolve(point, pairs=value[0], steering=value[1])
    if axis not in AXES:
        raise ConfigError("claims.axis", "one of " + ", ".join(AXES), axis)
    return attrs.evolve(point, **{axis: value})


def label(axis: str, value: Any) -> str:
    """A value of ``axis`` as the map's tick shows it."""
    if axis == "sharing":
        return f"{value[0]} pair{'s' if value[0] > 1 else ''}, {value[1]}"
    if axis == "load":
        return "closed" if value is None else f"{value:g}"
    return f"{value:g}x"


@frozen
class ClaimMap:
    """The outcomes over a grid: ``cells[j][i]`` at ``x_values[i]``, ``y_values[j]``."""

    x: str
    y: str
    x_values: tuple[Any, ...]
    y_values: tuple[Any, ...]
    cells: tuple[tuple[tuple[Outcome, ...], ...], ...]

    def holds(self, claim: int) -> list[list[bool]]:
        """Where ``claim`` holds, ``[j][i]``."""
        return [[c[claim - 1].holds for c in row] for row in self.cells]

    def rows(self) -> Iterable[dict[str, Any]]:
        """One row per cell and claim, for a CSV."""
        for j, yv in enumerate(self.y_values):
            for i, xv in enumerate(self.x_values):
                for o in self.cells[j][i]:
                    yield {"map": f"{self.x}-{self.y}", "x": self.x, "x_value": label(self.x, xv),
                           "y": self.y, "y_value": label(self.y, yv), "claim": o.claim,
                           "holds": o.holds, "margin": round(o.margin, 4), "why": o.why}


def claim_map(x: str, y: str, x_values: Sequence[Any] | None = None,
              y_values: Sequence[Any] | None = None, at: Point = DEFAULT_POINT,
              base: CostModel = DEFAULT_COSTS, jobs: int = 1,
              progress: Any = None) -> ClaimMap:
    """Evaluate the claims over ``x`` by ``y`` (:data:`AXES`), the other axes at ``at``."""
    for axis in (x, y):
        if axis not in AXES:
            raise ConfigError("claims.axis", "one of " + ", ".join(AXES), axis)
    xs = tuple(AXES[x] if x_values is None else x_values)
    ys = tuple(AXES[y] if y_values is None else y_values)
    points = [_at(_at(at, x, xv), y, yv) for yv in ys for xv in xs]
    flat = evaluate_many(points, base, jobs, progress)
    cells = tuple(tuple(flat[j * len(xs):(j + 1) * len(xs)]) for j in range(len(ys)))
    return ClaimMap(x, y, xs, ys, cells)


def host_position(host: CostModel, base: CostModel = DEFAULT_COSTS) -> dict[str, float]:
    """Where a host's costs sit on the cost axes: each group's total against ``base``'s
    (the other costs of the host are not the base's, so this is a position, not the
    host: ``napikit claims --costs FILE`` maps around the host itself)."""
    pos = {}
    for group, names in COST_GROUPS.items():
        b = sum(getattr(base, n) for n in names)
        pos[group] = sum(getattr(host, n) for n in names) / b if b else 1.0
    return pos


def plot(maps: Sequence[ClaimMap], path: Path, host: dict[str, float] | None = None) -> Path:
    """One row per map, one column per claim: green where the claim holds, red where it
    does not, the margin written in each cell; the host marked where its axes are."""
    require_matplotlib()
    import matplotlib.style
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure

    with matplotlib.style.context("default"), matplotlib.rc_context({"font.size": 7}):
        fig = Figure(figsize=(12, 2.9 * len(maps)), layout="constrained")
        axes = fig.subplots(len(maps), len(CLAIMS), squeeze=False)
        cmap = ListedColormap(["#e8a0a0", "#a8d8a0"])
        for r, m in enumerate(maps):
            for c, claim in enumerate(CLAIMS):
                ax = axes[r][c]
                ax.imshow([[1 if h else 0 for h in row] for row in m.holds(claim)],
                          cmap=cmap, vmin=0, vmax=1, origin="lower", aspect="auto")
                for j, row in enumerate(m.cells):
                    for i, cell in enumerate(row):
                        o = cell[claim - 1]
                        ax.text(i, j, "" if claim == 4 else f"{o.margin:+.2f}",
                                ha="center", va="center", fontsize=6)
                ax.set_xticks(range(len(m.x_values)),
                              [label(m.x, v) for v in m.x_values], fontsize=6)
                ax.set_yticks(range(len(m.y_values)),
                              [label(m.y, v) for v in m.y_values], fontsize=6)
                ax.set_xlabel(m.x)
                ax.set_ylabel(m.y)
                ax.grid(False)
                if r == 0:
                    ax.set_title(_CLAIM_TITLES[claim], fontsize=8)
                mark = _host_cell(m, host)
                if mark is not None:
                    ax.plot(*mark, marker="*", color="black", markersize=9)
        fig.savefig(path, dpi=110, metadata={"Software": None})
    return path


def _host_cell(m: ClaimMap, host: dict[str, float] | None) -> tuple[float, float] | None:
    """The host's position in a map's index coordinates (log-interpolated between the
    ticks), when both axes are cost axes and it lies on the map."""
    if not host or m.x not in host or m.y not in host:
        return None
    coords = []
    for axis, values in ((m.x, m.x_values), (m.y, m.y_values)):
        v = host[axis]
        logs = [math.log(x) for x in values]
        if v <= 0 or not logs[0] <= math.log(v) <= logs[-1]:
            return None
        k = max(i for i in range(len(logs)) if logs[i] <= math.log(v))
        k = min(k, len(logs) - 2)
        coords.append(k + (math.log(v) - logs[k]) / (logs[k + 1] - logs[k]))
    return coords[0], coords[1]


# ------------------------------------------------------------------ command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``napikit claims``'s options."""
    parser.add_argument("--out", type=Path, default=Path("claims"), metavar="DIR",
                        help="directory for claims.csv and claims.png (default ./claims)")
    parser.add_argument("--costs", type=Path, metavar="FILE",
                        help="map around a calibrated cost file instead of the defaults")
    parser.add_argument("--host", type=Path, metavar="FILE",
                        help="mark this cost file's position on the maps")
    parser.add_argument("--quick", action="store_true",
                        help="3 values per cost axis, 2 per other axis")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="processes to run on (default 1)")
    parser.add_argument("--no-plot", dest="plot", action="store_false",
                        help="write the CSV only")


def main(args: argparse.Namespace) -> int:
    """Run ``napikit claims``: every map of :data:`MAPS`, a CSV and a PNG."""
    from napikit.host.costfile import load_costs

    if args.jobs < 1:
        raise ConfigError("--jobs", "an integer >= 1", args.jobs)
    if args.plot:
        require_matplotlib()
    base = load_costs(args.costs) if args.costs else CostModel()
    host = host_position(load_costs(args.host), base) if args.host else None
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise NapikitError(f"cannot write {args.out}: {e.strerror}") from None
    values = QUICK_VALUES if args.quick else AXES
    maps = []
    bar = progress_bar()
    for x, y in MAPS:
        maps.append(claim_map(x, y, values[x], values[y], base=base, jobs=args.jobs,
                              progress=lambda d, t, w, n=f"{x} x {y}": bar(d, t, f"{n} {w}")))
    with open(args.out / "claims.csv", "w", newline="") as f:
        rows = [r for m in maps for r in m.rows()]
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    if args.plot:
        plot(maps, args.out / "claims.png", host)
    for m in maps:
        for claim in CLAIMS:
            held = sum(map(sum, m.holds(claim)))
            cells = len(m.x_values) * len(m.y_values)
            print(f"{m.x} x {m.y}: claim {claim} holds in {held}/{cells} cells")
    print(f"wrote {args.out / 'claims.csv'}" + (
        f" and {args.out / 'claims.png'}" if args.plot else ""), file=sys.stderr)
    return 0
