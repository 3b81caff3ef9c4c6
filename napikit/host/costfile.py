"""Cost-model files: what ``napikit calibrate`` writes and ``--costs FILE`` reads.

A TOML file (loading parses data only, it runs no code) with one table per
:class:`~napikit.config.CostModel` field::

    format = "napikit-costs/1"

    [costs.udp_recvmsg_ns]
    unit = "ns"
    value = 1480
    spread = [1390, 1610]
    source = "udp_drain: recv() of a queued 64-byte datagram, per datagram"
    distribution = { kind = "empirical", values = [1300, 1450, 2100], weights = [4, 5, 1] }

``distribution`` (optional) is the cost's shape around ``value``, its mean, as a
:class:`~napikit.config.CostDistribution`: ``kind`` and, by kind, ``sigma`` or ``values``
and ``weights``; without it the cost is constant.

plus ``[host]`` (facts of the machine) and ``[measurements.NAME]`` (every raw
measurement, also those that feed no field). A field the file leaves out keeps
napikit's default, and :class:`LoadedCosts` names it. Any other problem is a
:class:`~napikit.errors.ConfigError` naming the field, in one line.
"""

from __future__ import annotations

import math
import os
import tomllib
from pathlib import Path
from typing import Any

import attrs
import tomli_w
from attrs import frozen

from napikit.config import COST_MAX_NS, CostDistribution, CostModel
from napikit.errors import ConfigError, NapikitError

FORMAT = "napikit-costs/1"
FIELDS: tuple[str, ...] = tuple(a.name for a in attrs.fields(CostModel))
#: Top-level keys a cost file may hold.
TOP_KEYS = ("format", "napikit", "created", "costs", "host", "measurements", "notes")
ENTRY_KEYS = ("unit", "value", "spread", "source", "distribution")
DISTRIBUTION_KEYS = tuple(a.name for a in attrs.fields(CostDistribution))


@frozen
class CostEntry:
    """One field's calibrated value: ``value`` ns (an integer), its ``spread``
    ``(min, max)`` over the repetitions, where it came from, and, where the measurement
    timed single operations, their ``distribution`` (``value`` is then its mean)."""

    value: int
    spread: tuple[int, int]
    source: str
    distribution: CostDistribution | None = None

    def to_toml(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"unit": "ns", "value": self.value,
                                 "spread": list(self.spread), "source": self.source}
        if self.distribution is not None:
            d = attrs.asdict(self.distribution)
            entry["distribution"] = {k: list(v) if isinstance(v, tuple) else v
                                     for k, v in d.items() if v not in (None, ())}
        return entry


@frozen
class LoadedCosts:
    """A cost file's :class:`CostModel`, each field's source, and the fields left at
    napikit's default because the file had none."""

    costs: CostModel
    sources: dict[str, str]
    defaults: tuple[str, ...]
    host: dict[str, Any]
    measurements: dict[str, Any]
    #: The measured shape of the costs whose entry has one (the others are constant).
    distributions: dict[str, CostDistribution] = attrs.field(factory=dict)


def default_entry(field: str, why: str) -> CostEntry:
    """``field``'s napikit default, with ``why`` it is not measured."""
    value = getattr(CostModel(), field)
    return CostEntry(value, (value, value), f"default: {why}")


def dumps(entries: dict[str, CostEntry], host: dict[str, Any],
          measurements: dict[str, Any], **meta: Any) -> str:
    """The TOML text of a cost file."""
    unknown = set(entries) - set(FIELDS)
    if unknown:
        raise ValueError(f"not CostModel fields: {sorted(unknown)}")
    doc: dict[str, Any] = {"format": FORMAT, **meta}
    doc["costs"] = {name: entries[name].to_toml() for name in FIELDS if name in entries}
    doc["host"] = host
    doc["measurements"] = measurements
    return tomli_w.dumps(doc)


def write(path: Path | str, entries: dict[str, CostEntry], host: dict[str, Any],
          measurements: dict[str, Any], **meta: Any) -> None:
    """Write a cost file (see :func:`dumps`)."""
    text = dumps(entries, host, measurements, **meta)
    try:
        Path(path).write_text(text)
    except OSError as e:
        raise NapikitError(f"cannot write {path}: {e.strerror}") from None


def check_writable(path: Path | str) -> None:
    """Fail before minutes of measuring, not after: ``path``'s directory must exist and
    be writable (and ``path``, if it exists, a writable file)."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise NapikitError(f"cannot write {p}: no directory {parent}")
    if (p.exists() and (p.is_dir() or not os.access(p, os.W_OK))) or not os.access(
            parent, os.W_OK):
        raise NapikitError(f"cannot write {p}: permission denied or not a file")


def _int_ns(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= COST_MAX_NS:
        raise ConfigError(name, f"an integer number of ns from 0 to {COST_MAX_NS}", value)
    return value


def _distribution(where: str, table: object) -> CostDistribution:
    """An entry's ``distribution`` table as a :class:`CostDistribution`."""
    if not isinstance(table, dict):
        raise ConfigError(where, "a table with kind (" + ", ".join(
            ("constant", "exponential", "lognormal", "empirical")) + ") and its parameters",
            table)
    for key in table:
        if key not in DISTRIBUTION_KEYS:
            raise ConfigError(f"{where}.{key}", "one of: " + ", ".join(DISTRIBUTION_KEYS), key)
    try:
        return CostDistribution(**table)
    except ConfigError as e:
        # CostDistribution names its own field; the file's reader wants the whole path
        raise ConfigError(f"{where}.{e.field.rsplit('.', 1)[-1]}", e.allowed, e.got) \
            from None


def parse(doc: dict[str, Any]) -> LoadedCosts:
    """A parsed cost file as :class:`LoadedCosts`; :class:`ConfigError` names the first
    field that is wrong."""
    for key in doc:
        if key not in TOP_KEYS:
            raise ConfigError(key, "a cost-file table, one of: " + ", ".join(TOP_KEYS), key)
    fmt = doc.get("format", FORMAT)
    if fmt != FORMAT:
        raise ConfigError("format", repr(FORMAT), fmt)
    costs = doc.get("costs", {})
    if not isinstance(costs, dict):
        raise ConfigError("costs", "a table of CostModel fields", costs)
    values: dict[str, int] = {}
    sources: dict[str, str] = {}
    shapes: dict[str, CostDistribution] = {}
    for name, entry in costs.items():
        where = f"costs.{name}"
        if name not in FIELDS:
            raise ConfigError(where, "a CostModel field, one of: " + ", ".join(FIELDS), name)
        if not isinstance(entry, dict):
            raise ConfigError(where, "a table with unit, value, spread and source", entry)
        for key in entry:
            if key not in ENTRY_KEYS:
                raise ConfigError(f"{where}.{key}", "one of: " + ", ".join(ENTRY_KEYS), key)
        if "value" not in entry:
            raise ConfigError(f"{where}.value", "an integer number of ns", None)
        if entry.get("unit", "ns") != "ns":
            raise ConfigError(f"{where}.unit", '"ns"', entry["unit"])
        values[name] = _int_ns(f"{where}.value", entry["value"])
        spread = entry.get("spread", [values[name], values[name]])
        if not (isinstance(spread, list) and len(spread) == 2):
            raise ConfigError(f"{where}.spread", "a list [min, max] of integers", spread)
        lo, hi = (_int_ns(f"{where}.spread", v) for v in spread)
        if lo > hi:
            raise ConfigError(f"{where}.spread", "[min, max] with min <= max", spread)
        source = entry.get("source", "")
        if not isinstance(source, str):
            raise ConfigError(f"{where}.source", "a string", source)
        sources[name] = source
        if "distribution" in entry:
            shapes[name] = _distribution(f"{where}.distribution", entry["distribution"])
    for table in ("host", "measurements"):
        if not isinstance(doc.get(table, {}), dict):
            raise ConfigError(table, "a table", doc[table])
    defaults = tuple(name for name in FIELDS if name not in values)
    for name in defaults:
        sources[name] = "napikit default (not in the file)"
    return LoadedCosts(CostModel(**values), sources, defaults, doc.get("host", {}),
                       doc.get("measurements", {}), shapes)


def loads(text: str, name: str = "<string>") -> LoadedCosts:
    """Parse cost-file text; a syntax error is one line naming ``name``."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise NapikitError(f"{name}: not a valid TOML cost file: {e}") from None
    return parse(doc)


def load(path: Path | str) -> LoadedCosts:
    """Read a cost file (see the module docstring)."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise NapikitError(
            f"cannot read cost file {path}: {getattr(e, 'strerror', None) or e}") from None
    return loads(text, str(path))


def load_costs(path: Path | str) -> CostModel:
    """Only the :class:`CostModel` of a cost file."""
    return load(path).costs


def median_spread(values: list[float]) -> tuple[int, tuple[int, int]]:
    """``(median, (min, max))`` rounded to whole ns, clamped at 0."""
    clean = sorted(max(0.0, v) for v in values if math.isfinite(v))
    if not clean:
        raise ValueError("no finite values")
    n = len(clean)
    mid = clean[n // 2] if n % 2 else (clean[n // 2 - 1] + clean[n // 2]) / 2
    return round(mid), (round(clean[0]), round(clean[-1]))
