"""Parameter sweeps: a base scenario, a grid over any fields, seeds; ``napikit sweep``.

A sweep file (TOML; loading runs no code)::

    format = "napikit-sweep/1"
    scenario = "seed-rps"          # or: config = "my.toml" (relative to this file),
                                   # or an inline [base] table in scenario-file form
    seeds = [1, 2, 3]              # or seeds = 3 (1, 2, 3); default: the base's seed
    packets = 5000                 # optional: the base's packets

    [grid]
    policy = ["softirq-ipi", "backlog-threads"]
    ncpus = [2, 4]
    "kernel.hz" = [250, 1000]      # kernel.hz = [...] (a nested table) works too
    "costs.ipi_send_ns" = [100, 200]
    "workload.rate_pps" = [5e5, 1e6]   # every workload that has the field
    "policy_options.fast_path" = [true, false]

The cells are the cartesian product of the grid (in the file's key order, the last key
varying fastest), times the seeds. A cell's values are applied with the command line's
``--set`` machinery (:func:`napikit.cli.apply_overrides`); ``policy`` replaces the
base's policy (and its options, as ``run --policy`` does), ``policy_options.NAME`` sets
an option. Every cell's configuration is built and validated before the first run.

Rows: one per run, columns ``cell`` (its index in grid order), ``grid.<key>`` per grid
key, ``seed``, ``fingerprint`` (:func:`~napikit.config_fingerprint` of the cell's full
Config) and every scalar figure of the :class:`~napikit.Result`, flattened: a nested
record's fields are joined with dots (``drops.backlog``, ``latency_send_recv.p99_ns``),
an item of a list by its index (``cpu_time.1.softirq``, ``softnet.0.processed``,
``cyclictest_latency.0.p99_ns``). ``config``, ``samples``, ``histograms`` and
``tasks`` are left out (the fingerprint names the config). A grid value that is a list
(``offline_cpus = [[], [3]]``) is its ``--set`` text (``""``, ``"3"``).

Each finished cell is written at once to ``DIR/<fingerprint>.parquet`` (a temporary
file renamed into place), so a killed sweep loses no finished cell, and a rerun skips
every cell whose file is there.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import time
import tomllib
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from attrs import frozen

from napikit.config import Config
from napikit.errors import ConfigError, NapikitError
from napikit.results import Result

if TYPE_CHECKING:
    import argparse

    import pandas as pd

#: The value of a sweep file's ``format`` key.
FORMAT = "napikit-sweep/1"
KEYS = ("format", "name", "description", "scenario", "config", "base", "grid", "seeds",
        "packets")
#: Result fields not in a row (lists of objects, the config, the time series).
SKIPPED = ("config", "samples", "histograms", "tasks")
#: Below this many seconds of (estimated) serial work, a pool is not started: spawning
#: its workers (each imports napikit) costs about that much.
POOL_STARTUP_S = 2.0
ANALYSIS_MISSING = "napikit sweep needs pandas and pyarrow: pip install 'napikit[analysis]'"

Progress = Callable[[int, int, str], None]


@frozen
class Cell:
    """One run of a sweep: its index in grid order, its grid values, its Config."""

    index: int
    values: tuple[tuple[str, Any], ...]
    seed: int
    config: Config
    fingerprint: str

    def label(self) -> str:
        """``key=value ... seed=N``, for the progress line."""
        return " ".join([*(f"{k}={_text(v)}" for k, v in self.values), f"seed={self.seed}"])


@frozen
class Sweep:
    """A base configuration, a grid (ordered ``(key, values)``) and the seeds."""

    base: Config
    grid: tuple[tuple[str, tuple[Any, ...]], ...]
    seeds: tuple[int, ...]

    def cells(self) -> list[Cell]:
        """Every cell, built and validated (a bad one: a :class:`ConfigError`)."""
        return build_cells(self.base, dict(self.grid), self.seeds)


# ------------------------------------------------------------------ the file


def _flat_grid(table: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flat_grid(value, name + ".")
        else:
            yield name, value


def _seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 10_000:
        return tuple(range(1, value + 1))
    if (isinstance(value, list) and value and len(set(value)) == len(value)
            and all(isinstance(s, int) and not isinstance(s, bool) for s in value)):
        return tuple(value)
    raise ConfigError("seeds", "a count from 1 to 10000 or a list of distinct integers",
                      value)


def loads_sweep(text: str, source: str = "<string>", root: Path | None = None) -> Sweep:
    """The :class:`Sweep` of sweep-file text; ``root``: where ``config = FILE`` is
    looked up (default: the current directory). Errors are one line."""
    from napikit import scenarios
    from napikit.scenario_file import config_from_dict, load_scenario

    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise NapikitError(f"{source}: not valid TOML: {e}") from None
    if doc.get("format") != FORMAT:
        raise ConfigError("format", f'"{FORMAT}" (a sweep file says what it is)',
                          doc.get("format"))
    unknown = sorted(set(doc) - set(KEYS))
    if unknown:
        raise ConfigError(unknown[0], "a key of a sweep file, one of: " + ", ".join(KEYS),
                          unknown[0])
    sources = [k for k in ("scenario", "config", "base") if k in doc]
    if len(sources) != 1:
        raise ConfigError("scenario", "exactly one of scenario, config or [base]",
                          sources)
    if "scenario" in doc:
        base = scenarios.get(str(doc["scenario"])).config
    elif "config" in doc:
        base = load_scenario((root or Path()) / str(doc["config"]))
    else:
        if not isinstance(doc["base"], Mapping):
            raise ConfigError("base", "a table in scenario-file form", doc["base"])
        try:
            base = config_from_dict(doc["base"])
        except ConfigError as e:
            raise ConfigError(f"base.{e.field}", e.allowed, e.got) from None
    if "packets" in doc:
        packets = doc["packets"]
        if not isinstance(packets, int) or isinstance(packets, bool):
            raise ConfigError("packets", "an integer >= 1", packets)
        base = base.evolve(packets=packets)
    grid_table = doc.get("grid", {})
    if not isinstance(grid_table, Mapping):
        raise ConfigError("grid", "a table of field = [values]", grid_table)
    grid = []
    for key, values in _flat_grid(grid_table):
        if not isinstance(values, list) or not values:
            raise ConfigError(f"grid.{key}", "a non-empty list of values", values)
        grid.append((key, tuple(values)))
    seeds = _seeds(doc["seeds"]) if "seeds" in doc else (base.seed,)
    return Sweep(base=base, grid=tuple(grid), seeds=seeds)


def load_sweep_file(path: str | Path) -> Sweep:
    """The :class:`Sweep` of the sweep file at ``path`` (``config =`` relative to it)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise NapikitError(f"cannot read sweep file {path}: "
                           f"{getattr(e, 'strerror', None) or e}") from None
    return loads_sweep(text, str(path), Path(path).parent)


# ------------------------------------------------------------------ cells


def _text(value: Any) -> str:
    """A grid value as ``--set`` text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return ",".join(_text(v) for v in value)
    return str(value)


def cell_config(base: Config, values: Sequence[tuple[str, Any]]) -> Config:
    """``base`` with one cell's grid values applied (see the module docstring)."""
    from napikit.cli import apply_overrides, policy_options
    from napikit.simulation import Simulation

    policy, options, sets = base.policy, dict(base.policy_options), []
    for key, value in values:
        if key == "policy":
            if not isinstance(value, str):
                raise ConfigError("policy", "the name of an installed policy", value)
            if value != base.policy:
                policy, options = value, {}
        elif key == "seed":
            raise ConfigError("grid.seed", "absent: the seeds are the sweep's seeds key",
                              value)
        elif key.startswith("policy_options."):
            options[key.partition(".")[2]] = value
        else:
            sets.append((key, _text(value)))
    text_options = [(k, _text(v)) for k, v in options.items()]
    config = apply_overrides(base, sets).evolve(
        policy=policy, policy_options=policy_options(policy, text_options))
    Simulation(config)  # resolves the policy and checks its options
    return config


def build_cells(base: Config, grid: Mapping[str, Sequence[Any]],
                seeds: Sequence[int] | int | None = None) -> list[Cell]:
    """Every cell of ``grid`` (cartesian product, in key order) times ``seeds``, each
    Config built and validated; a bad cell is a one-line :class:`ConfigError` naming its
    grid values."""
    from napikit.scenario_file import config_fingerprint

    seed_list = (base.seed,) if seeds is None else (
        _seeds(seeds) if isinstance(seeds, int) else tuple(seeds))
    keys = list(grid)
    cells: list[Cell] = []
    for combo in itertools.product(*(list(grid[k]) for k in keys)):
        values = tuple(zip(keys, combo, strict=True))
        try:
            config = cell_config(base, values)
        except (ConfigError, ValueError, OverflowError) as e:
            where = " ".join(f"{k}={_text(v)!r}" for k, v in values)
            raise ConfigError(f"grid cell {where}", "a valid configuration",
                              str(e)) from None
        for seed in seed_list:
            c = config.evolve(seed=seed)
            cells.append(Cell(len(cells), values, seed, c, config_fingerprint(c)))
    return cells


# ------------------------------------------------------------------ rows


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _flatten(v, f"{prefix}.{i}", out)
    else:
        out[prefix] = value


def figures(result: Result) -> dict[str, Any]:
    """Every scalar figure of ``result``, flattened (see the module docstring)."""
    out: dict[str, Any] = {}
    data = result.to_dict()
    for key in SKIPPED:
        data.pop(key, None)
    _flatten(data, "", out)
    return out


def row(cell: Cell, result: Result) -> dict[str, Any]:
    """The row of one run: ``cell``, ``grid.<key>``, ``seed``, ``fingerprint``, figures."""
    out: dict[str, Any] = {"cell": cell.index}
    for k, v in cell.values:
        out[f"grid.{k}"] = _text(v) if isinstance(v, (list, tuple)) else v
    out["seed"] = cell.seed
    out["fingerprint"] = cell.fingerprint
    for k, v in figures(result).items():
        out.setdefault(k, v)
    return out


def _require_analysis() -> None:
    try:
        import pandas  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError:
        raise NapikitError(ANALYSIS_MISSING) from None


def _write(out: Path, r: dict[str, Any]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = out / f"{r['fingerprint']}.parquet"
    tmp = out / f".{r['fingerprint']}.parquet.tmp"
    pq.write_table(pa.Table.from_pylist([r]), tmp)
    os.replace(tmp, path)


def _frame(tables: list[Any]) -> pd.DataFrame:
    import pandas as pd

    frames = sorted((t.to_pandas() for t in tables), key=lambda f: int(f["cell"].iloc[0]))
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True)


def load_sweep(out: str | Path, fingerprints: Sequence[str] | None = None) -> pd.DataFrame:
    """The rows of the sweep written in ``out``, one per run, in grid order
    (``fingerprints``: only those cells)."""
    _require_analysis()
    import pyarrow.parquet as pq

    paths = sorted(Path(out).glob("*.parquet"))
    if fingerprints is not None:
        wanted = set(fingerprints)
        paths = [p for p in paths if p.stem in wanted]
    return _frame([pq.read_table(p) for p in paths])


# ------------------------------------------------------------------ running


def pool_size(jobs: int, remaining: int, first_cell_s: float) -> int:
    """How many processes run the ``remaining`` cells after the first took
    ``first_cell_s``: 1 (serially, here) when ``jobs`` is 1, when at most one cell is
    left, or when the rest would take under :data:`POOL_STARTUP_S` serially; else
    ``min(jobs, remaining)``."""
    if jobs <= 1 or remaining <= 1 or first_cell_s * remaining < POOL_STARTUP_S:
        return 1
    return min(jobs, remaining)


def _local(cells: list[Cell], jobs: int) -> Generator[tuple[Cell, Result], None, None]:
    from napikit.simulation import simulate
    from napikit.study import map_runs

    if not cells:
        return
    start = time.monotonic()
    yield cells[0], simulate(cells[0].config)
    rest = cells[1:]
    by_index = {c.index: c for c in rest}
    size = pool_size(jobs, len(rest), time.monotonic() - start)
    runs = cast(Generator[tuple[int, Result], None, None],
                map_runs([(c.index, c.config) for c in rest], size))
    try:
        for index, result in runs:
            yield by_index[index], result
    finally:
        runs.close()  # leaving the pool terminates its workers


def _dask(cells: list[Cell], client: Any) -> Generator[tuple[Cell, Result], None, None]:
    from distributed import as_completed

    from napikit.simulation import simulate

    futures = {client.submit(simulate, c.config, key=f"napikit-{c.fingerprint}"): c
               for c in cells}
    try:
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        client.cancel(list(futures))


def run_cells(cells: list[Cell], out: Path | None = None, *, jobs: int = 1,
              client: Any = None, progress: Progress | None = None) -> list[dict[str, Any]]:
    """Run the ``cells`` not already in ``out`` (on a local pool, or on the Dask
    ``client``), writing each finished one to ``out`` at once; the rows of the cells
    run, in completion order."""
    _require_analysis()
    todo = cells
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise NapikitError(f"cannot write {out}: {e.strerror}") from None
        todo = [c for c in cells if not (out / f"{c.fingerprint}.parquet").exists()]
    total, done = len(cells), len(cells) - len(todo)
    if progress is not None:
        progress(done, total, f"{done} cells already in {out}" if done else "starting")
    start = time.monotonic()
    rows = []
    engine = _dask(todo, client) if client is not None else _local(todo, jobs)
    try:
        for cell, result in engine:
            r = row(cell, result)
            if out is not None:
                _write(out, r)
            rows.append(r)
            if progress is not None:
                left = (time.monotonic() - start) / len(rows) * (len(todo) - len(rows))
                progress(done + len(rows), total,
                         f"{cell.label()}, ETA {_duration(left)}")
    finally:
        engine.close()
    return rows


def _duration(seconds: float) -> str:
    s = int(math.ceil(seconds))
    return f"{s // 3600}:{s // 60 % 60:02}:{s % 60:02}"


def sweep(base: Config | str, grid: Mapping[str, Sequence[Any]],
          seeds: Sequence[int] | int | None = None, client: Any = None, *,
          out: str | Path | None = None, jobs: int = 1,
          progress: Progress | None = None) -> pd.DataFrame:
    """Run ``base`` (a Config or a scenario name) over ``grid`` (dotted field ->
    values) and ``seeds`` (a list, or a count N: 1..N; default the base's seed); one
    row per run, in grid order (see the module docstring). ``client``: a
    ``distributed.Client`` to run on, else a local pool of ``jobs`` processes (see
    :func:`pool_size`). ``out``: write each cell there, and skip those already there."""
    if isinstance(base, str):
        from napikit import scenarios

        base = scenarios.get(base).config
    cells = build_cells(base, grid, seeds)
    path = Path(out) if out is not None else None
    rows = run_cells(cells, path, jobs=jobs, client=client, progress=progress)
    if path is not None:
        return load_sweep(path, [c.fingerprint for c in cells])
    import pyarrow as pa

    return _frame([pa.Table.from_pylist([r]) for r in rows])


# ------------------------------------------------------------------ command


def _tqdm_progress() -> Progress | None:
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    bar: Any = None

    def show(done: int, total: int, what: str) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, initial=done, unit="cell", file=sys.stderr)
        else:
            bar.update(done - bar.n)
        bar.set_postfix_str(what.rpartition(", ETA")[0] or what)
        if done == total:
            bar.close()

    return show


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``napikit sweep``'s options."""
    from napikit.values import at_least_one

    parser.add_argument("sweep", metavar="SWEEP.toml", help="the sweep file")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="directory of the Parquet dataset (one file per cell); a "
                        "rerun skips the cells already there")
    parser.add_argument("--jobs", type=at_least_one, default=os.cpu_count() or 1,
                        metavar="N", help="processes (default: the CPU count)")
    parser.add_argument("--dask", metavar="ADDRESS|local",
                        help="run on a Dask cluster: tcp://host:8786, or local for a "
                        "LocalCluster of --jobs workers")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    """``napikit sweep``: run every cell of the sweep file not already in ``--out``."""
    from napikit.study import progress_bar

    _require_analysis()
    cells = load_sweep_file(args.sweep).cells()  # every cell validated before any run
    progress = None if args.quiet else (_tqdm_progress() or progress_bar())
    start = time.monotonic()
    cluster = client = None
    try:
        if args.dask is not None:
            try:
                from distributed import Client, LocalCluster
            except ImportError:
                raise NapikitError("--dask needs dask: pip install 'napikit[dask]'") from None
            if args.dask == "local":
                cluster = LocalCluster(n_workers=args.jobs, threads_per_worker=1,
                                       processes=True)
                client = Client(cluster)
            else:
                try:
                    client = Client(args.dask, timeout=10)
                except OSError as e:
                    raise NapikitError(f"cannot reach the Dask scheduler {args.dask}: "
                                       f"{e}") from None
        rows = run_cells(cells, args.out, jobs=args.jobs, client=client, progress=progress)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"the finished cells are kept in {args.out}; the same "
                                "command continues from them") from None
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    print(f"napikit sweep: {len(cells)} cells, {len(rows)} run, "
          f"{len(cells) - len(rows)} already in {args.out}, in "
          f"{time.monotonic() - start:.0f} s", file=sys.stderr)
    print(args.out)
    return 0


__all__ = ["Cell", "Sweep", "build_cells", "cell_config", "figures", "load_sweep",
           "load_sweep_file", "loads_sweep", "pool_size", "row", "run_cells", "sweep"]
