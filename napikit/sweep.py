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
``--set`` machinery (:func:`napikit.overrides.apply_overrides`); ``policy`` replaces the
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
every cell whose file is there. With several seeds, ``napikit sweep`` also writes
``DIR/summary.csv``: :func:`sweep_summary`, each figure's mean and 95 % confidence
interval per cell.

Besides the result's fields, a row has ``drops.total`` and ``punished_softirq_ns``
(softirq time charged to application tasks, :meth:`~napikit.Result.punished_softirq_ns`),
in all and per CPU (``punished_softirq_ns.1``).

More keys, all data (docs/research-workflow.md, "Sweeps"):

- ``scenario`` in the grid: each value names a shipped scenario, the cell's base (the
  file then names no other base); ``packets`` applies to each.
- ``scale_pairs = true``: the grid's ``ncpus`` copies the base's one LoopbackUdp pair
  per two CPUs (:func:`napikit.scenarios.scale_pairs`), each sending ``packets``.
- ``add_workloads = [{kind = "Cyclictest", cpu = 1}]``: workloads (scenario-file
  tables) added to every cell's.
- a ``policy`` grid value may be a table, ``{name = "backlog-threads", options =
  {fast_path = false}}``: the policy with these options (``grid.policy`` shows
  ``backlog-threads fast_path=false``).
- ``[relative]``, loads relative to a measured figure, in two stages::

      [relative]
      field = "workload.rate_pps"    # set to load x figure, split over the workloads
      figure = "delivered_pps"       # the figure of the cell's reference run
      reference = { policy = "softirq-ipi" }

  The grid then has a ``load`` key (numbers > 0). A cell's reference run is the cell
  without ``load``, with ``reference``'s grid values (its ``field`` as the base has it:
  a SEED scenario's closed loop); the reference runs go first (cells ``0`` to ``R-1``),
  then each grid cell gets ``field = load * figure / (its workloads having the
  field)``. Its row has ``reference.fingerprint`` and ``reference.<figure>``.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import re
import signal
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

import attrs
from attrs import frozen

from napikit.config import NR_CPUS_MAX, Config, Workload
from napikit.errors import ConfigError, NapikitError
from napikit.results import APPLICATION_TASKS, Result
from napikit.simulation import simulate

if TYPE_CHECKING:
    import argparse

    import pandas as pd

#: The value of a sweep file's ``format`` key.
FORMAT = "napikit-sweep/1"
KEYS = ("format", "name", "description", "scenario", "config", "base", "grid", "seeds",
        "packets", "scale_pairs", "add_workloads", "relative")
RELATIVE_KEYS = ("field", "figure", "reference")
#: Result fields not in a row (lists of objects, the config, the time series).
SKIPPED = ("config", "samples", "histograms", "tasks")
#: Below this many seconds of (estimated) serial work, a pool is not started: spawning
#: its workers (each imports napikit) costs about that much.
POOL_STARTUP_S = 2.0
ANALYSIS_MISSING = "napikit sweep needs pandas and pyarrow: pip install 'napikit[analysis]'"

Progress = Callable[[int, int, str], None]


@frozen
class Cell:
    """One run of a sweep: its index in grid order, its grid values, its Config, and in a
    ``[relative]`` sweep its ``reference`` columns (``reference.fingerprint``, ...)."""

    index: int
    values: tuple[tuple[str, Any], ...]
    seed: int
    config: Config
    fingerprint: str
    reference: tuple[tuple[str, Any], ...] = ()

    def label(self) -> str:
        """``key=value ... seed=N``, for the progress line."""
        return " ".join([*(f"{k}={grid_text(v)}" for k, v in self.values), f"seed={self.seed}"])


@frozen
class Relative:
    """A ``[relative]`` table: each cell's ``field`` (``workload.NAME``) is its ``load``
    times the ``figure`` of its reference run, the cell with ``reference``'s grid values
    and no ``load``."""

    field: str
    figure: str
    reference: tuple[tuple[str, Any], ...] = ()


@frozen
class Sweep:
    """A base configuration, a grid (ordered ``(key, values)``) and the seeds, and the
    file's other keys (see the module docstring)."""

    base: Config
    grid: tuple[tuple[str, tuple[Any, ...]], ...]
    seeds: tuple[int, ...]
    packets: int | None = None
    scale_pairs: bool = False
    add_workloads: tuple[Workload, ...] = ()
    relative: Relative | None = None

    def config(self, values: Sequence[tuple[str, Any]]) -> Config:
        """The Config of one cell's grid ``values`` (seed: the base's)."""
        from napikit import scenarios

        rest = dict(values)
        base = self.base
        if "scenario" in rest:
            base = scenarios.get(str(rest.pop("scenario"))).config
        if self.packets is not None:
            base = base.evolve(packets=self.packets)
        if self.scale_pairs and "ncpus" in rest:
            base = scenarios.scale_pairs(base, rest.pop("ncpus"))
        if self.add_workloads:
            base = base.evolve(workloads=base.workloads + self.add_workloads)
        if self.relative is not None:
            rest.pop("load", None)
        elif "load" in rest:
            raise ConfigError("grid.load", "absent: load is a key of a sweep with a "
                              "[relative] table", rest["load"])
        return cell_config(base, list(rest.items()))

    def _combos(self) -> Iterator[tuple[tuple[str, Any], ...]]:
        keys = [k for k, _ in self.grid]
        for combo in itertools.product(*(values for _, values in self.grid)):
            yield tuple(zip(keys, combo, strict=True))

    def _reference_values(self, values: tuple[tuple[str, Any], ...]
                          ) -> tuple[tuple[str, Any], ...]:
        assert self.relative is not None
        ref = dict(self.relative.reference)
        kept = [(k, ref.pop(k) if k in ref else v) for k, v in values if k != "load"]
        return (*kept, *ref.items())

    def references(self) -> list[Cell]:
        """The reference runs of a ``[relative]`` sweep (none otherwise), built and
        validated, in grid order: cells ``0`` to ``R-1``."""
        if self.relative is None:
            return []
        unique = dict.fromkeys(self._reference_values(v) for v in self._combos())
        return _cells(self, list(unique), 0)

    def cells(self, figures: Mapping[str, float] | None = None) -> list[Cell]:
        """Every cell of the grid, built and validated (a bad one: a one-line
        :class:`ConfigError` naming its grid values). In a ``[relative]`` sweep they
        follow the references, and ``figures`` (reference fingerprint -> its figure)
        sets each cell's field; without it the field stays the base's, which validates
        every cell before a reference has run."""
        if self.relative is None:
            return _cells(self, list(self._combos()), 0)
        refs = {(c.values, c.seed): c for c in self.references()}
        cells = _cells(self, list(self._combos()), len(refs))
        return [_relative_cell(self.relative, c, refs[self._reference_values(c.values),
                                                     c.seed], figures) for c in cells]


def _cells(sweep: Sweep, combos: list[tuple[tuple[str, Any], ...]], start: int
           ) -> list[Cell]:
    from napikit.scenario_file import config_fingerprint

    cells: list[Cell] = []
    for values in combos:
        try:
            config = sweep.config(values)
        except (ConfigError, ValueError, OverflowError) as e:
            where = " ".join(f"{k}={grid_text(v)!r}" for k, v in values)
            raise ConfigError(f"grid cell {where}", "a valid configuration",
                              str(e)) from None
        for seed in sweep.seeds:
            c = config.evolve(seed=seed)
            cells.append(Cell(start + len(cells), values, seed, c, config_fingerprint(c)))
    return cells


def _relative_cell(relative: Relative, cell: Cell, ref: Cell,
                   figures: Mapping[str, float] | None) -> Cell:
    """``cell`` with its field set from its reference run's figure (``figures`` None:
    only checked to have the field)."""
    from napikit.scenario_file import config_fingerprint

    name = relative.field.partition(".")[2]
    having = [i for i, w in enumerate(cell.config.workloads)
              if name in attrs.fields_dict(type(w))]
    if not having:
        raise ConfigError("relative.field", "a field of the cells' workloads", name)
    if figures is None:
        return cell
    load, figure = dict(cell.values)["load"], figures[ref.fingerprint]
    value = load * figure / len(having)
    workloads = tuple(attrs.evolve(w, **{name: value}) if i in having else w
                      for i, w in enumerate(cell.config.workloads))
    config = cell.config.evolve(workloads=workloads)
    return attrs.evolve(cell, config=config, fingerprint=config_fingerprint(config),
                        reference=(("reference.fingerprint", ref.fingerprint),
                                   (f"reference.{relative.figure}", figure)))


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


def _number_list(key: str, values: Any) -> tuple[float, ...]:
    if (not isinstance(values, list) or not values or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and 0 < x < math.inf
            for x in values)):
        raise ConfigError(key, "a non-empty list of finite numbers > 0", values)
    return tuple(float(x) for x in values)


def _relative(table: Any) -> Relative:
    if not isinstance(table, Mapping):
        raise ConfigError("relative", "a table of " + ", ".join(RELATIVE_KEYS), table)
    unknown = sorted(set(table) - set(RELATIVE_KEYS))
    if unknown:
        raise ConfigError(f"relative.{unknown[0]}", "one of: " + ", ".join(RELATIVE_KEYS),
                          unknown[0])
    field, figure = table.get("field"), table.get("figure")
    if not isinstance(field, str) or not field.startswith("workload.") or field == "workload.":
        raise ConfigError("relative.field", "workload.NAME, a number field of the workloads "
                          '(e.g. "workload.rate_pps")', field)
    if not isinstance(figure, str) or not figure:
        raise ConfigError("relative.figure", 'a figure of a row (e.g. "delivered_pps")', figure)
    reference = table.get("reference", {})
    if not isinstance(reference, Mapping):
        raise ConfigError("relative.reference", "a table of grid key = value", reference)
    return Relative(field, figure, tuple(_flat_grid(reference)))


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
    grid_table = doc.get("grid", {})
    if not isinstance(grid_table, Mapping):
        raise ConfigError("grid", "a table of field = [values]", grid_table)
    grid = []
    for key, values in _flat_grid(grid_table):
        if not isinstance(values, list) or not values:
            raise ConfigError(f"grid.{key}", "a non-empty list of values", values)
        grid.append((key, _number_list("grid.load", values) if key == "load"
                     else tuple(values)))
    sources = [k for k in ("scenario", "config", "base") if k in doc]
    if len(sources) + ("scenario" in dict(grid)) != 1:
        raise ConfigError("scenario", "exactly one of scenario, config, [base] or a "
                          "scenario key in [grid]", sources)
    if "scenario" in doc:
        base = scenarios.get(str(doc["scenario"])).config
    elif "config" in doc:
        base = load_scenario((root or Path()) / str(doc["config"]))
    elif "base" in doc:
        if not isinstance(doc["base"], Mapping):
            raise ConfigError("base", "a table in scenario-file form", doc["base"])
        try:
            base = config_from_dict(doc["base"])
        except ConfigError as e:
            raise ConfigError(f"base.{e.field}", e.allowed, e.got) from None
    else:  # each cell's base is its grid scenario
        base = scenarios.get(str(dict(grid)["scenario"][0])).config
    packets = doc.get("packets")
    if packets is not None and (not isinstance(packets, int) or isinstance(packets, bool)):
        raise ConfigError("packets", "an integer >= 1", packets)
    scale = doc.get("scale_pairs", False)
    if not isinstance(scale, bool):
        raise ConfigError("scale_pairs", "true or false", scale)
    added = doc.get("add_workloads", [])
    if not isinstance(added, list):
        raise ConfigError("add_workloads", "a list of workload tables", added)
    try:
        # Structured as a Config's workloads after a traffic source (a Config needs
        # one) on as many CPUs as may be: each cell's checks its own CPU numbers.
        workloads = config_from_dict({"ncpus": NR_CPUS_MAX, "workloads": [
            {"kind": "LoopbackUdp"}, *added]}).workloads[1:]
    except ConfigError as e:
        index = re.match(r"workloads\[(\d+)\]", e.field)
        where = f"add_workloads[{int(index[1]) - 1}]{e.field[index.end():]}" if index \
            else "add_workloads"
        raise ConfigError(where, e.allowed, e.got) from None
    relative = _relative(doc["relative"]) if "relative" in doc else None
    if relative is not None and "load" not in dict(grid):
        raise ConfigError("grid.load", "a list of loads > 0 (the [relative] figure's "
                          "fractions)", None)
    seeds = _seeds(doc["seeds"]) if "seeds" in doc else (base.seed,)
    return Sweep(base=base, grid=tuple(grid), seeds=seeds, packets=packets,
                 scale_pairs=scale, add_workloads=workloads, relative=relative)


def load_sweep_file(path: str | Path) -> Sweep:
    """The :class:`Sweep` of the sweep file at ``path`` (``config =`` relative to it)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise NapikitError(f"cannot read sweep file {path}: "
                           f"{getattr(e, 'strerror', None) or e}") from None
    return loads_sweep(text, str(path), Path(path).parent)


# ------------------------------------------------------------------ cells


def grid_text(value: Any) -> str:
    """A grid value as ``--set`` text, and as a row shows a list or a policy table."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return ",".join(grid_text(v) for v in value)
    if isinstance(value, Mapping):  # a policy table: its label
        return " ".join([str(value.get("name")),
                         *(f"{k}={grid_text(v)}" for k, v in value.get("options", {}).items())])
    return str(value)


def _policy_table(value: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    name, options = value.get("name"), value.get("options", {})
    if set(value) - {"name", "options"} or not isinstance(name, str) \
            or not isinstance(options, Mapping):
        raise ConfigError("policy", "a policy name or a table {name = POLICY, options = "
                          "{KEY = VALUE}}", dict(value))
    return name, dict(options)


def cell_config(base: Config, values: Sequence[tuple[str, Any]]) -> Config:
    """``base`` with one cell's grid values applied (see the module docstring)."""
    from napikit.overrides import apply_overrides, policy_options
    from napikit.simulation import Simulation

    policy, options, sets = base.policy, dict(base.policy_options), []
    for key, value in values:
        if key == "policy" and isinstance(value, Mapping):
            policy, options = _policy_table(value)
        elif key == "policy":
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
            sets.append((key, grid_text(value)))
    text_options = [(k, grid_text(v)) for k, v in options.items()]
    config = apply_overrides(base, sets).evolve(
        policy=policy, policy_options=policy_options(policy, text_options))
    Simulation(config)  # resolves the policy and checks its options
    return config


def build_cells(base: Config, grid: Mapping[str, Sequence[Any]],
                seeds: Sequence[int] | int | None = None) -> list[Cell]:
    """Every cell of ``grid`` (cartesian product, in key order) times ``seeds``, each
    Config built and validated; a bad cell is a one-line :class:`ConfigError` naming its
    grid values."""
    seed_list = (base.seed,) if seeds is None else (
        _seeds(seeds) if isinstance(seeds, int) else tuple(seeds))
    grid_items = tuple((k, tuple(v)) for k, v in grid.items())
    return Sweep(base=base, grid=grid_items, seeds=seed_list).cells()


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
    # Figures the result computes rather than holds (its tasks are not in a row).
    out["drops.total"] = result.drops.total
    out["punished_softirq_ns"] = result.punished_softirq_ns()
    softirq = [0] * len(result.cpu_time)
    for t in result.tasks:
        if t.kind in APPLICATION_TASKS:
            softirq[t.cpu] += t.softirq_ns
    for cpu, ns in enumerate(softirq):
        out[f"punished_softirq_ns.{cpu}"] = ns
    return out


def row(cell: Cell, result: Result) -> dict[str, Any]:
    """The row of one run: ``cell``, ``grid.<key>``, ``seed``, ``fingerprint``, its
    ``reference.*`` columns, figures."""
    out: dict[str, Any] = {"cell": cell.index}
    for k, v in cell.values:
        out[f"grid.{k}"] = grid_text(v) if isinstance(v, (list, tuple, Mapping)) else v
    out["seed"] = cell.seed
    out["fingerprint"] = cell.fingerprint
    out.update(cell.reference)
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
    """One-row tables (cells' files, or rows) as one DataFrame in grid order (stable:
    a cell's seeds keep their order). Joined as Arrow tables and converted once: a
    pandas frame per row costs more than most short runs."""
    import pandas as pd
    import pyarrow as pa

    if not tables:
        return pd.DataFrame()
    tables = sorted(tables, key=lambda t: t.column("cell")[0].as_py())
    # Cells of other CPU counts have other cpu_time.N columns: new ones come after the
    # columns of the cells before them, and a cell without one has NaN there, as
    # pandas.concat would give (Arrow's null is None in an object column).
    df = pa.concat_tables(tables, promote_options="default").to_pandas()
    columns = set(df.columns)
    row = 0
    for t in tables:
        for name in columns.difference(t.column_names):
            if df[name].dtype == object:
                df.iloc[row:row + t.num_rows, df.columns.get_loc(name)] = float("nan")
        row += t.num_rows
    return df


def load_sweep(out: str | Path, fingerprints: Sequence[str] | None = None) -> pd.DataFrame:
    """The rows of the sweep written in ``out``, one per run, in grid order
    (``fingerprints``: only those cells)."""
    return _frame(_tables(Path(out), fingerprints))


def _tables(out: Path, fingerprints: Sequence[str] | None) -> list[Any]:
    _require_analysis()
    import pyarrow.parquet as pq

    paths = sorted(out.glob("*.parquet"))
    if fingerprints is not None:
        wanted = set(fingerprints)
        paths = [p for p in paths if p.stem in wanted]
    return [pq.read_table(p) for p in paths]


def writable_dir(path: Path) -> None:
    """Make ``path`` a directory napikit can write to, or fail in one line naming it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise NapikitError(f"--out: must be a directory napikit can write to (got "
                           f"{str(path)!r}: {e.strerror})") from None


# ------------------------------------------------------------------ running


def pool_size(jobs: int, remaining: int, first_cell_s: float) -> int:
    """How many processes run the ``remaining`` cells after the first took
    ``first_cell_s``: 1 (serially, here) when ``jobs`` is 1, when at most one cell is
    left, or when the rest would take under :data:`POOL_STARTUP_S` serially; else
    ``min(jobs, remaining)``."""
    if jobs <= 1 or remaining <= 1 or first_cell_s * remaining < POOL_STARTUP_S:
        return 1
    return min(jobs, remaining)


def _simulate(task: tuple[Any, Config]) -> tuple[Any, Result]:
    key, config = task
    return key, simulate(config)


def map_runs(tasks: Sequence[tuple[Any, Config]], jobs: int) -> Iterator[tuple[Any, Result]]:
    """``(key, result)`` of each ``(key, config)``, on ``jobs`` processes, in completion
    order."""
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


def _local(cells: list[Cell], jobs: int, timing: dict[str, float]
           ) -> Generator[tuple[Cell, Result], None, None]:
    """The cells on a pool sized by :func:`pool_size` from one cell's time:
    ``timing["cell_s"]`` if an earlier stage measured it, else the first cell's, run
    here alone (and kept there for the next stage)."""
    if not cells:
        return
    rest = cells
    if "cell_s" not in timing:
        start = time.monotonic()
        yield cells[0], simulate(cells[0].config)
        timing["cell_s"] = time.monotonic() - start
        rest = cells[1:]
    by_index = {c.index: c for c in rest}
    size = pool_size(jobs, len(rest), timing["cell_s"])
    runs = cast(Generator[tuple[int, Result], None, None],
                map_runs([(c.index, c.config) for c in rest], size))
    try:
        for index, result in runs:
            yield by_index[index], result
    finally:
        runs.close()  # leaving the pool terminates its workers


def _dask(cells: list[Cell], client: Any) -> Generator[tuple[Cell, Result], None, None]:
    from distributed import as_completed

    futures = {client.submit(simulate, c.config, key=f"napikit-{c.fingerprint}"): c
               for c in cells}
    try:
        for future in as_completed(futures):
            yield futures[future], future.result()
    finally:
        client.cancel(list(futures))


def run_cells(cells: list[Cell], out: Path | None = None, *, jobs: int = 1,
              client: Any = None, progress: Progress | None = None,
              timing: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Run the ``cells`` not already in ``out`` (on a local pool, or on the Dask
    ``client``), writing each finished one to ``out`` at once; the rows of the cells
    run, in completion order. ``progress(done, total, what)`` is called after each run,
    and first if some cells were already there. ``timing``: one cell's time, shared by
    the stages of a sweep, so that only the first stage runs a cell alone to size the
    pool (see :func:`_local`)."""
    _require_analysis()
    todo = cells
    if out is not None:
        writable_dir(out)
        todo = [c for c in cells if not (out / f"{c.fingerprint}.parquet").exists()]
    total, done = len(cells), len(cells) - len(todo)
    if progress is not None and done:
        progress(done, total, f"{done} cells already in {out}")
    start = time.monotonic()
    rows = []
    engine = _dask(todo, client) if client is not None else \
        _local(todo, jobs, timing if timing is not None else {})
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


def run_sweep(spec: Sweep, out: str | Path | None = None, *, jobs: int = 1,
              client: Any = None, progress: Progress | None = None) -> list[dict[str, Any]]:
    """Run every cell of ``spec`` not already in ``out`` (see :func:`run_cells`): a
    ``[relative]`` sweep's reference runs first, then its grid with the figures they
    gave. The rows of every cell, in cell order, run or read back from ``out``."""
    path = Path(out) if out is not None else None
    refs = spec.references()
    cells = spec.cells()  # every cell validated before the first run
    total = len(refs) + len(cells)

    def stage(offset: int) -> Progress | None:
        if progress is None:
            return None
        report = progress
        return lambda done, _, what: report(offset + done, total, what)

    timing: dict[str, float] = {}
    ref_rows = _rows(refs, path, run_cells(refs, path, jobs=jobs, client=client,
                                           progress=stage(0), timing=timing))
    if spec.relative is not None:
        figure = spec.relative.figure
        values = [r.get(figure) for r in ref_rows]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                   for v in values):
            raise ConfigError("relative.figure", "a figure of the reference runs' rows, "
                              "a number > 0 in each (e.g. delivered_pps)", figure)
        cells = spec.cells({r["fingerprint"]: r[figure] for r in ref_rows})
    rows = _rows(cells, path, run_cells(cells, path, jobs=jobs, client=client,
                                        progress=stage(len(refs)), timing=timing))
    return ref_rows + rows


def _rows(cells: list[Cell], out: Path | None, new: list[dict[str, Any]]
          ) -> list[dict[str, Any]]:
    """The row of each of ``cells``, in order: from ``new``, else from ``out``."""
    by_fingerprint = {r["fingerprint"]: r for r in new}
    missing = [c.fingerprint for c in cells if c.fingerprint not in by_fingerprint]
    if missing:
        assert out is not None
        for table in _tables(out, missing):
            r = table.to_pylist()[0]
            by_fingerprint[r["fingerprint"]] = r
    return [by_fingerprint[c.fingerprint] for c in cells]


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
    return frame(_rows(cells, path, run_cells(cells, path, jobs=jobs, client=client,
                                              progress=progress)))


def frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows (of :func:`run_sweep`) as the DataFrame :func:`load_sweep` gives."""
    _require_analysis()
    import pyarrow as pa

    return _frame([pa.Table.from_pylist([dict(r)]) for r in rows])


# ------------------------------------------------------------------ seeds


#: The columns of :func:`sweep_summary` after the grid's.
SUMMARY_COLUMNS = ("figure", "mean", "ci95", "n")


def sweep_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per cell of the grid (rows with the same ``grid.*`` values: its seeds) and per
    scalar figure (every numeric column but ``cell``, ``seed`` and ``reference.*``), in
    grid order: ``figure``, ``mean``, ``ci95`` (the half-width of the 95 % confidence
    interval, Student's t: :class:`napikit.confidence.Estimate`; NaN for one seed, which
    gives no interval) and ``n``, the seeds with a value."""
    import pandas as pd

    from napikit.confidence import Estimate

    grid = [c for c in df.columns if c.startswith("grid.")]
    figures = [c for c in df.columns
               if c not in ("cell", "seed") and not c.startswith(("grid.", "reference."))
               and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
    groups = df.groupby(grid, sort=False, dropna=False) if grid else [((), df)]
    out = []
    for key, group in groups:
        cell = dict(zip(grid, key, strict=True))
        for name in figures:
            values = [float(v) for v in group[name].dropna()]
            if values:
                e = Estimate.of(values)
                out.append({**cell, "figure": name, "mean": e.mean,
                            "ci95": e.ci95 if e.n > 1 else math.nan, "n": e.n})
    return pd.DataFrame(out, columns=[*grid, *SUMMARY_COLUMNS])


# ------------------------------------------------------------------ command


def progress_bar(stream: TextIO | None = None) -> Progress:
    """A textual progress report on ``stream`` (default ``sys.stderr``):
    ``[ 123/540] seed-rps ncpus=16 ...``, redrawn in place on a terminal, one line per
    report otherwise."""
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


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """``--jobs`` and ``--dask``, of ``napikit sweep`` and ``napikit study``."""
    from napikit.values import at_least_one

    parser.add_argument("--jobs", type=at_least_one, default=os.cpu_count() or 1,
                        metavar="N", help="processes (default: the CPU count)")
    parser.add_argument("--dask", metavar="ADDRESS|local",
                        help="run on a Dask cluster: tcp://host:8786, or local for a "
                        "LocalCluster of --jobs workers")


@contextmanager
def dask_client(address: str | None, jobs: int) -> Iterator[Any]:
    """The Dask client of ``--dask ADDRESS`` (``local``: a LocalCluster of ``jobs``
    worker processes), closed on leaving; None without ``--dask``."""
    if address is None:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise NapikitError("--dask needs dask: pip install 'napikit[dask]'") from None
    if address == "local":
        with LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True) as cluster, \
                Client(cluster) as client:
            yield client
        return
    try:
        client = Client(address, timeout=10)
    except OSError as e:
        raise NapikitError(f"cannot reach the Dask scheduler {address}: {e}") from None
    with client:
        yield client


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``napikit sweep``'s options."""
    parser.add_argument("sweep", metavar="SWEEP.toml", help="the sweep file")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="directory of the Parquet dataset (one file per cell); a "
                        "rerun skips the cells already there")
    add_engine_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    """``napikit sweep``: run every cell of the sweep file not already in ``--out``."""
    _require_analysis()
    spec = load_sweep_file(args.sweep)
    progress = None if args.quiet else (_tqdm_progress() or progress_bar())
    start = time.monotonic()
    already = len(list(args.out.glob("*.parquet"))) if args.out.is_dir() else 0
    try:
        with dask_client(args.dask, args.jobs) as client:
            rows = run_sweep(spec, args.out, jobs=args.jobs, client=client, progress=progress)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"the finished cells are kept in {args.out}; the same "
                                "command continues from them") from None
    ran = len(list(args.out.glob("*.parquet"))) - already  # each cell run adds its file
    print(f"napikit sweep: {len(rows)} cells, {ran} run, {len(rows) - ran} already in "
          f"{args.out}, in {time.monotonic() - start:.0f} s", file=sys.stderr)
    print(args.out)
    if len(spec.seeds) > 1:
        # CSV, not Parquet: the dataset is every *.parquet file in DIR.
        path = args.out / "summary.csv"
        sweep_summary(frame(rows)).to_csv(path, index=False, lineterminator="\n")
        print(f"napikit sweep: mean and 95 % confidence interval over {len(spec.seeds)} "
              f"seeds per cell and figure in {path}", file=sys.stderr)
        print(path)
    return 0


__all__ = ["Cell", "Relative", "Sweep", "build_cells", "cell_config", "figures", "frame",
           "grid_text",
           "load_sweep", "load_sweep_file", "loads_sweep", "map_runs", "pool_size",
           "progress_bar", "row", "run_cells", "run_sweep", "sweep", "sweep_summary",
           "writable_dir"]
