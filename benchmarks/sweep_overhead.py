"""Sweep overhead: a 200-cell grid of short runs through ``napikit.sweep`` against a plain
loop of ``simulate()`` calls over the same configurations.

The grid is ``--policy`` (default softirq-ipi and backlog-threads) times ``--seeds``
(default 100) of ``--scenario`` (default perf-a), at each ``--packets`` (default 5,000
and 100,000 packets per cell). Four ways of running it, timed side by side, in turn
(A B C D, A B C D, ...) so that drift hits all alike, best of ``--repeat``:

- ``loop``: ``[simulate(config) for config in configs]``, nothing else;
- ``sweep``: ``napikit.sweep(base, grid, seeds)``, serially, rows in memory;
- ``sweep --out``: the same, each cell written to a Parquet file in a new directory;
- ``sweep --out --jobs N``: the same on the local pool (``--jobs``, default the CPU
  count), which starts only when the first cell says the rest would take over
  ``POOL_STARTUP_S`` serially (so a grid of very short runs stays serial).

Run ``python benchmarks/sweep_overhead.py`` (``--help`` for options). The loop's
configurations must be the sweep's cells', and every way must deliver what the loop
delivers, cell by cell: if not, the script ends with status 1 and says which.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perf_a import machine  # the machine record of every benchmark (run from benchmarks/)

import napikit
from napikit import plugins, scenarios
from napikit.simulation import simulate

SWEEP = sys.modules["napikit.sweep"]  # napikit.sweep, the attribute, is the function
POLICIES = ["softirq-ipi", "backlog-threads"]

Say = Callable[[str], None]
#: What a timed way returns: the delivered count of each cell, in grid order.
Way = Callable[[], list[int]]


@dataclass
class Timing:
    """One way's timed runs of one grid."""

    name: str
    seconds: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(self.seconds)


def configs(base: napikit.Config, policies: list[str], seeds: list[int]) -> list[napikit.Config]:
    """The grid's configurations as a plain loop would write them, in the sweep's order
    (policy, then seed)."""
    return [base.evolve(policy=p, policy_options={}, seed=s) for p in policies for s in seeds]


def ways(base: napikit.Config, policies: list[str], seeds: list[int],
         jobs: int) -> dict[str, Way]:
    """The four ways of running the grid; each returns the delivered count per cell."""
    plain = configs(base, policies, seeds)
    grid = {"policy": policies}
    if plain != [c.config for c in SWEEP.build_cells(base, grid, seeds)]:
        raise SystemExit("sweep_overhead: the loop's configurations are not the sweep's")

    def loop() -> list[int]:
        return [simulate(c).delivered for c in plain]

    def in_memory() -> list[int]:
        return list(napikit.sweep(base, grid, seeds=seeds)["delivered"])

    def to_dir(n: int) -> Way:
        def run() -> list[int]:
            # A new directory every time: in one already filled the sweep skips every cell.
            with tempfile.TemporaryDirectory() as tmp:
                df = napikit.sweep(base, grid, seeds=seeds, out=Path(tmp, "out"), jobs=n)
            return list(df["delivered"])
        return run

    return {"loop": loop, "sweep": in_memory, "sweep --out": to_dir(1),
            f"sweep --out --jobs {jobs}": to_dir(jobs)}


def measure(named: dict[str, Way], repeat: int) -> list[Timing]:
    """Best-of-``repeat`` timings, the ways taken in turn; each way's results checked
    against the loop's."""
    timings = {name: Timing(name) for name in named}
    expected: list[int] | None = None
    for _ in range(repeat):
        for name, way in named.items():
            gc.collect()
            start = time.perf_counter()
            delivered = way()
            timings[name].seconds.append(time.perf_counter() - start)
            expected = delivered if expected is None else expected
            if delivered != expected:
                raise SystemExit(f"sweep_overhead: {name} gave other results than the loop")
    return list(timings.values())


def report(timings: list[Timing], cells: int, say: Say) -> dict[str, Any]:
    """Print one grid's table; return its figures."""
    loop = timings[0].best
    say(f"  {'way':<24}{'best s':>9}{'median s':>10}{'ms per cell':>13}{'vs loop':>9}")
    figures: dict[str, Any] = {}
    for t in timings:
        per_cell = t.best / cells
        say(f"  {t.name:<24}{t.best:>9.3f}{statistics.median(t.seconds):>10.3f}"
            f"{per_cell * 1e3:>13.3f}{t.best / loop:>8.2f}x")
        figures[t.name] = {"seconds": t.seconds, "best_s": t.best,
                           "per_cell_s": per_cell, "ratio_to_loop": t.best / loop}
    return figures


def parse_args(installed: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default="perf-a", choices=scenarios.names(),
                        help="the base scenario (default %(default)s)")
    parser.add_argument("--policy", action="append", choices=installed,
                        help="a policy of the grid (repeatable; default "
                        + " and ".join(POLICIES) + ")")
    parser.add_argument("--seeds", type=int, default=100,
                        help="seeds per policy: 1..N (default %(default)s)")
    parser.add_argument("--packets", type=int, action="append",
                        help="packets per cell, one grid each (repeatable; default 5000 "
                        "and 100000)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="processes of the pool (default: the CPU count, %(default)s)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed runs per way, best kept (default %(default)s)")
    parser.add_argument("--json", action="store_true",
                        help="print the figures as one JSON document instead of text")
    args = parser.parse_args()
    if min(args.seeds, args.jobs, args.repeat, *(args.packets or [1])) < 1:
        parser.error("--seeds, --packets, --jobs and --repeat must be >= 1")
    return args


def main() -> int:
    installed = [spec.name for spec in plugins.registry()]
    args = parse_args(installed)
    policies = list(dict.fromkeys(args.policy or POLICIES))  # a cell twice is one file
    seeds = list(range(1, args.seeds + 1))
    cells = len(policies) * len(seeds)
    say: Say = (lambda line: None) if args.json else print
    figures: dict[str, Any] = {"machine": machine(), "scenario": args.scenario,
                               "policies": policies, "seeds": args.seeds, "cells": cells,
                               "jobs": args.jobs, "repeat": args.repeat, "grids": {}}
    say("sweep overhead: " + ", ".join(f"{k} {v}" for k, v in figures["machine"].items()))
    for packets in args.packets or [5000, 100_000]:
        base = scenarios.get(args.scenario).config.evolve(packets=packets)
        say(f"\n{args.scenario}, {packets:,} packets per cell: {len(policies)} policies x "
            f"{len(seeds)} seeds = {cells} cells, best of {args.repeat}")
        timings = measure(ways(base, policies, seeds, args.jobs), args.repeat)
        table = report(timings, cells, say)
        # What the sweep decides from its first cell, estimated from the loop's average.
        pool = SWEEP.pool_size(args.jobs, cells - 1, timings[0].best / cells)
        say(f"  the pool: {pool} process{'es' if pool > 1 else ''} expected (it starts when "
            f"the rest of the grid would take over {SWEEP.POOL_STARTUP_S:g} s serially)")
        figures["grids"][str(packets)] = {"expected_pool": pool, "ways": table}
    if args.json:
        print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
