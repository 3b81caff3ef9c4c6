"""A scenario as a TOML file, the fingerprint of a configuration, and replaying a result.

A scenario file describes one run completely: every field of :class:`~napikit.Config`,
as TOML (loading parses data only, it runs no code)::

    format = "napikit-scenario/1"
    name = "seed-rps"                      # optional, informational
    description = "SEED-RPS: ..."          # optional, informational
    ncpus = 2
    policy = "softirq-ipi"
    offline_cpus = []
    hotplug = []
    packets = 200000
    drain_ns = 10000000
    stall_timeout_ns = 1000000000
    seed = 1

    [[workloads]]
    kind = "LoopbackUdp"
    senders = [0]
    receivers = [1]
    flows = 1
    rps_cpus = [1]
    nice = 0

    [policy_options]

    [kernel]
    hz = 1000
    ...

    [costs]
    netif_rx_ns = 100
    ...

Nested attrs classes are tables, tuples are arrays, and each workload (an array of
tables, ``[[workloads]]`` or inline) names its class in a ``kind`` key. TOML has no
null: a field that is ``None`` is left out where ``None`` is its default, and written
``"none"`` where it is not (``packets = "none"`` with a ``duration_ns``;
``stall_timeout_ns = "none"``: no watchdog). A key left out takes its default. An
unknown key, a value of the wrong type and a value a validator refuses are each a
one-line :class:`~napikit.errors.ConfigError` naming the key's dotted path
(``workloads[0].rate_pps``) and the values allowed.

The structuring is generic (cattrs, extra keys forbidden): any attrs class, tuple,
``X | None``, union of attrs classes (tagged by ``kind``) or ``dict`` a field of
:class:`~napikit.Config` holds round-trips without code here knowing it.

Every :class:`~napikit.Result` carries a fingerprint: the sha256 of the canonical
configuration (:func:`config_dict`, as JSON with sorted keys) and napikit's version.
:func:`replay` reruns the configuration a result file holds and compares the new
result with it byte for byte.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import tomllib
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from types import NoneType
from typing import TYPE_CHECKING, Any

import attrs
import cattrs
import tomli_w
from attrs import frozen
from cattrs.errors import (
    AttributeValidationNote,
    BaseValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn

from napikit import __version__
from napikit.config import Config
from napikit.errors import ConfigError, NapikitError

if TYPE_CHECKING:
    from napikit.results import Result

#: The value of a scenario file's ``format`` key.
FORMAT = "napikit-scenario/1"
#: Keys of a scenario file besides the fields of :class:`~napikit.Config`.
META_KEYS = ("format", "name", "description")
#: How an optional field whose default is not ``None`` is set to ``None`` in TOML.
NONE = "none"
#: The key naming a workload's (any union member's) class.
KIND = "kind"
_HEADER = (
    "# A napikit scenario: every field of napikit.Config (docs/research-workflow.md).\n"
    "# Run it with `napikit run --config FILE`. A key left out takes its default;\n"
    f'# "{NONE}" sets an optional field whose default is a value to None.\n\n'
)


class _Missing:
    """A key the input does not have (``repr``: what the error message says)."""

    def __repr__(self) -> str:
        return "nothing"


MISSING: Any = _Missing()


class _WrongShape(TypeError):
    """A value of the wrong kind where a table or a list must be."""


# ------------------------------------------------------------------ types


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, type(int | None))


def _optional_of(tp: Any) -> Any:
    """``X`` of ``X | None`` (a single ``X``), else ``None``."""
    if not _is_union(tp):
        return None
    rest = [a for a in typing.get_args(tp) if a is not NoneType]
    return rest[0] if len(rest) == 1 and len(rest) < len(typing.get_args(tp)) else None


def _is_attrs_union(tp: Any) -> bool:
    return _is_union(tp) and all(
        isinstance(a, type) and attrs.has(a) for a in typing.get_args(tp)
    )


def _is_list(tp: Any) -> bool:
    """``tuple[X, ...]``."""
    args = typing.get_args(tp)
    return typing.get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis


def _is_attrs(tp: Any) -> bool:
    return isinstance(tp, type) and attrs.has(tp)


#: ``Config.policy_options``: sorted ``(name, value)`` pairs, a table in files.
_OPTIONS = _hints(Config)["policy_options"]


def _describe(tp: Any) -> str:
    """What a value of type ``tp`` is, as the error message says it."""
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    if tp in names:
        return names[tp]
    if tp == _OPTIONS:
        return "a table of policy options (true/false, numbers or strings)"
    inner = _optional_of(tp)
    if inner is not None:
        return f'{_describe(inner)} or "{NONE}"'
    if _is_attrs_union(tp):
        kinds = ", ".join(a.__name__ for a in typing.get_args(tp))
        return f"a table with {KIND} = one of: {kinds}"
    if _is_attrs(tp):
        return f"a table of {tp.__name__} fields"
    if _is_list(tp):
        return f"a list ({_describe(typing.get_args(tp)[0])} each)"
    if typing.get_origin(tp) in (dict, Mapping):
        return f"a table ({_describe(typing.get_args(tp)[1])} each)"
    return "a valid value"


# ------------------------------------------------------------------ the converter


def _as_is(value: Any, _: Any) -> Any:
    # Scalars reach the attrs validators unchanged: they name the field and its range,
    # where cattrs' int()/str()/bool() would turn "3", 1.5 or "false" into something.
    return value


def _to_float(value: Any, _: Any) -> Any:
    """An integer where a float is declared becomes that float (``rate_pps = 500000``
    is ``500000.0``, as ``--set`` makes it); anything else is the validator's."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            return value
    return value


def _structure_options(value: Any, _: Any) -> Any:
    # A mapping as it is: Config's converter sorts it and its validator checks it.
    if not isinstance(value, Mapping):
        raise _WrongShape("policy_options")
    return dict(value)


def _list_hook(tp: Any) -> Callable[[Any, Any], Any]:
    item = typing.get_args(tp)[0]

    def structure(value: Any, _: Any) -> tuple[Any, ...]:
        if not isinstance(value, (list, tuple)):
            raise _WrongShape(tp)
        handler = _converter.get_structure_hook(item)
        out, errors = [], []
        for i, v in enumerate(value):
            try:
                out.append(handler(v, item))
            except Exception as e:
                e.add_note(IterableValidationNote(f"Structuring {tp} @ index {i}", i, item))
                errors.append(e)
        if errors:
            raise IterableValidationError(f"While structuring {tp!r}", errors, tp)
        return tuple(out)

    return structure


def _attrs_hook(cls: type) -> Callable[[Any, Any], Any]:
    inner: Callable[[Any, Any], Any] = make_dict_structure_fn(cls, _converter)

    def structure(value: Any, _: Any) -> Any:
        if not isinstance(value, Mapping):
            raise _WrongShape(cls)
        return inner(value, cls)

    return structure


def _union_hook(tp: Any) -> Callable[[Any, Any], Any]:
    kinds = {a.__name__: a for a in typing.get_args(tp)}
    allowed = "one of: " + ", ".join(kinds)

    def structure(value: Any, _: Any) -> Any:
        if not isinstance(value, Mapping):
            raise _WrongShape(tp)
        kind = value.get(KIND, MISSING)
        if kind is MISSING:
            raise ConfigError(KIND, f"{allowed} (each entry names its class)", MISSING)
        if not isinstance(kind, str) or kind not in kinds:
            raise ConfigError(KIND, allowed, kind)
        fields = {k: v for k, v in value.items() if k != KIND}
        return _converter.structure(fields, kinds[kind])

    return structure


def _optional_hook(tp: Any) -> Callable[[Any, Any], Any]:
    inner = _optional_of(tp)

    def structure(value: Any, _: Any) -> Any:
        if value is None or (value == NONE and inner is not str):
            return None
        return _converter.get_structure_hook(inner)(value, inner)

    return structure


def _unstructure_list(tp: Any) -> Callable[[Any], Any]:
    item = typing.get_args(tp)[0]
    return lambda value: [_converter.unstructure(v, unstructure_as=item) for v in value]


def _unstructure_union(value: Any) -> dict[str, Any]:
    return {KIND: type(value).__name__, **_converter.unstructure(value)}


_converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
for _scalar in (int, str, bool):
    _converter.register_structure_hook(_scalar, _as_is)
_converter.register_structure_hook(float, _to_float)
# Later registrations take precedence: the specific options type after the generic list.
_converter.register_structure_hook_factory(_is_attrs, _attrs_hook)
_converter.register_structure_hook_factory(_is_list, _list_hook)
_converter.register_structure_hook_factory(_is_attrs_union, _union_hook)
_converter.register_structure_hook_factory(
    lambda tp: _optional_of(tp) is not None, _optional_hook
)
_converter.register_structure_hook_func(lambda tp: tp == _OPTIONS, _structure_options)
_converter.register_unstructure_hook_factory(_is_list, _unstructure_list)
_converter.register_unstructure_hook_func(_is_attrs_union, _unstructure_union)
_converter.register_unstructure_hook_func(lambda tp: tp == _OPTIONS, dict)


# ------------------------------------------------------------------ errors


def _render(path: list[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _workload_path(error: ConfigError, raw: Any) -> str:
    """A cross-field error of :class:`Config` names a workload by its kind
    (``loopback_udp.senders``); in a file the key is ``workloads[i].senders``, ``i`` the
    first workload of that kind holding the value named."""
    section, _, name = error.field.partition(".")
    workloads = raw.get("workloads") if isinstance(raw, Mapping) else None
    if not name or "." in name or not isinstance(workloads, list):
        return error.field
    for i, w in enumerate(workloads):
        if not isinstance(w, Mapping) or _snake(str(w.get(KIND))) != section:
            continue
        value = w.get(name, MISSING)
        if value is MISSING:
            continue
        got = error.got
        if value == got or (isinstance(value, list) and (value == [got] or
                                                        tuple(value) == got)):
            return f"workloads[{i}].{name}"
    return error.field


def _renamed(error: ConfigError, path: list[str | int], raw_root: Any) -> ConfigError:
    """``error`` (named as the attrs validators name fields: ``kernel.hz``,
    ``loopback_udp.rate_pps``) renamed to its key path in the input."""
    prefix, field = _render(path), error.field
    if not prefix:
        field = _workload_path(error, raw_root)
    elif field and not (field == prefix or field.startswith((prefix + ".", prefix + "["))):
        field = f"{prefix}.{field.partition('.')[2] or field}"
    elif not field:
        field = prefix
    return error if field == error.field else ConfigError(field, error.allowed, error.got)


def _last_note(exc: BaseException) -> Any:
    notes = [n for n in getattr(exc, "__notes__", ())
             if isinstance(n, (AttributeValidationNote, IterableValidationNote))]
    return notes[-1] if notes else None


def _flatten(exc: BaseException, raw_root: Any, top_keys: tuple[str, ...] = ()) -> ConfigError:
    """cattrs' nested :class:`ClassValidationError` / ``ExceptionGroup`` as one
    :class:`ConfigError`: the first failure, named by its dotted key path."""
    path: list[str | int] = []
    raw: Any = raw_root
    tp: Any = Config
    while isinstance(exc, BaseValidationError) and exc.exceptions:
        tp = exc.cl
        sub: BaseException = exc.exceptions[0]
        note = _last_note(sub)
        if isinstance(note, AttributeValidationNote):
            path.append(note.name)
            raw = raw.get(note.name, MISSING) if isinstance(raw, Mapping) else MISSING
            tp = note.type
        elif isinstance(note, IterableValidationNote):
            path.append(note.index)
            try:
                raw = raw[note.index]
            except (KeyError, IndexError, TypeError):
                raw = MISSING
            tp = note.type
        exc = sub
    where = _render(path)
    if isinstance(exc, ConfigError):
        return _renamed(exc, path, raw_root)
    if isinstance(exc, ForbiddenExtraKeysError):
        key = sorted(exc.extra_fields)[0]
        known = [*(top_keys if not path else ()), *(a.name for a in attrs.fields(exc.cl))]
        return ConfigError(_render([*path, key]),
                           f"a key of {exc.cl.__name__}, one of: " + ", ".join(known), key)
    if raw is MISSING:
        return ConfigError(where, f"{_describe(tp)} (the key has no default)", MISSING)
    return ConfigError(where, _describe(tp), raw)


# ------------------------------------------------------------------ dicts


def config_from_dict(data: Mapping[str, Any]) -> Config:
    """The :class:`~napikit.Config` a mapping describes: a scenario file's fields
    (without its ``format``), or a result's ``config``. Keys left out take their
    defaults; an unknown key, a wrong type or a refused value is a one-line
    :class:`~napikit.errors.ConfigError` naming the key's dotted path."""
    return _structure(data)


def _structure(data: Any, top_keys: tuple[str, ...] = ()) -> Config:
    if not isinstance(data, Mapping):
        raise ConfigError("config", _describe(Config), data)
    try:
        config = _converter.structure(data, Config)
    except ConfigError:
        raise
    except Exception as e:  # cattrs' groups, and a hook's own TypeError
        raise _flatten(e, data, top_keys) from None
    assert isinstance(config, Config)
    return config


def canonical_config(config: Config) -> Config:
    """``config`` with each value of the type its field declares (an integer given for
    a float field is that float): what a scenario file or a result gives back."""
    return _structure(_converter.unstructure(config))


def config_dict(config: Config) -> dict[str, Any]:
    """``config`` as plain data, canonical: :meth:`Config.to_dict
    <napikit.Config.to_dict>` of :func:`canonical_config`, so equal configurations give
    equal dicts. It is what :attr:`Result.config <napikit.Result.config>` holds (every
    field, ``None`` kept, workloads tagged with their ``kind``) and what the
    fingerprint hashes."""
    return canonical_config(config).to_dict()


def _canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)


def fingerprint_of(data: Mapping[str, Any], version: str) -> str:
    """The fingerprint of a configuration in its :func:`config_dict` form, run by
    napikit ``version``: the sha256 (hex) of both as canonical JSON."""
    return hashlib.sha256(
        _canonical_json({"config": data, "napikit": version}).encode()
    ).hexdigest()


def config_fingerprint(config: Config, version: str | None = None) -> str:
    """A stable hash of ``config`` and napikit's version (``version``: another's):
    equal configurations give the same fingerprint in every process, any change to a
    field a different one. It is :attr:`Result.fingerprint <napikit.Result.fingerprint>`
    of a run of ``config``."""
    return fingerprint_of(config_dict(config), __version__ if version is None else version)


# ------------------------------------------------------------------ files


def _toml_ready(value: Any, tp: Any) -> Any:
    """Unstructured ``value`` of type ``tp`` without nulls: a ``None`` field is left
    out where ``None`` is its default, else written ``"none"``."""
    if tp == _OPTIONS:
        return value
    inner = _optional_of(tp)
    if inner is not None:
        return _toml_ready(value, inner)
    if _is_attrs_union(tp) and isinstance(value, Mapping):
        kind = next(a for a in typing.get_args(tp) if a.__name__ == value[KIND])
        return {KIND: value[KIND], **_toml_ready(
            {k: v for k, v in value.items() if k != KIND}, kind)}
    if _is_attrs(tp):
        out = {}
        fields = attrs.fields_dict(tp)
        for name, field_type in _hints(tp).items():
            if name not in value:
                continue
            v = value[name]
            if v is None:
                if fields[name].default is not None:
                    out[name] = NONE
                continue
            out[name] = _toml_ready(v, field_type)
        return out
    if _is_list(tp):
        return [_toml_ready(v, typing.get_args(tp)[0]) for v in value]
    if typing.get_origin(tp) in (dict, Mapping) and isinstance(value, Mapping):
        item = typing.get_args(tp)[1]
        return {k: _toml_ready(v, item) for k, v in value.items() if v is not None}
    return value


def dump_scenario(config: Config, *, name: str | None = None,
                  description: str | None = None) -> str:
    """``config`` as the text of a scenario file (``name`` and ``description``, if
    given, are written as informational keys). Loading the text gives ``config``
    back: :func:`loads_scenario` of it equals it, and runs byte-identically."""
    doc: dict[str, Any] = {"format": FORMAT}
    if name is not None:
        doc["name"] = name
    if description is not None:
        doc["description"] = description
    doc.update(_toml_ready(config_dict(config), Config))
    text = _HEADER + tomli_w.dumps(doc)
    if loads_scenario(text) != config:
        raise AssertionError(f"napikit bug: a dumped scenario does not load back:\n{text}")
    return text


def loads_scenario(text: str, source: str = "<string>") -> Config:
    """The :class:`~napikit.Config` of scenario-file text (``source`` names it in a
    syntax error). Errors are one line: :class:`~napikit.errors.NapikitError` for
    text that is not TOML, :class:`~napikit.errors.ConfigError` naming the key for a
    wrong or missing ``format``, an unknown key or a value of a field refused."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise NapikitError(f"{source}: not valid TOML: {e}") from None
    except RecursionError:
        raise NapikitError(f"{source}: not a scenario file: nested too deeply") from None
    fmt = doc.pop("format", MISSING)
    if fmt != FORMAT:
        raise ConfigError("format", f'"{FORMAT}" (a scenario file says what it is)', fmt)
    for key in ("name", "description"):
        value = doc.pop(key, "")
        if not isinstance(value, str):
            raise ConfigError(key, "a string (informational)", value)
    return _structure(doc, META_KEYS)


def load_scenario(path: str | Path) -> Config:
    """The :class:`~napikit.Config` of the scenario file at ``path`` (see
    :func:`loads_scenario`); a file that cannot be read is one line too."""
    return loads_scenario(_read(path, "scenario file"), str(path))


def _read(path: str | Path, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        why = getattr(e, "strerror", None) or str(e)
        raise NapikitError(f"cannot read {what} {path}: {why}") from None


# ------------------------------------------------------------------ replay


@frozen
class Difference:
    """One field whose value differs: ``path`` (dotted, ``softnet[1].processed``) and
    its JSON values, ``old`` in the result file and ``new`` in the rerun
    (:data:`MISSING` where one has no such field)."""

    path: str
    old: Any
    new: Any

    def line(self, width: int = 60) -> str:
        """``path: old -> new``, each value cut to ``width`` characters."""
        return f"{self.path}: {_show(self.old, width)} -> {_show(self.new, width)}"


def _show(value: Any, width: int) -> str:
    text = "(absent)" if value is MISSING else json.dumps(value, sort_keys=True)
    return text if len(text) <= width else text[: width - 3] + "..."


def _same(a: Any, b: Any) -> bool:
    # JSON values: 1, 1.0 and true are different texts.
    return type(a) is type(b) and a == b


def _diff(old: Any, new: Any, path: str = "") -> list[Difference]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for key in sorted(old.keys() | new.keys())
                for d in _diff(old.get(key, MISSING), new.get(key, MISSING),
                               f"{path}.{key}" if path else key)]
    if isinstance(old, list) and isinstance(new, list):
        return [d for i in range(max(len(old), len(new)))
                for d in _diff(old[i] if i < len(old) else MISSING,
                               new[i] if i < len(new) else MISSING, f"{path}[{i}]")]
    return [] if _same(old, new) else [Difference(path, old, new)]


@frozen
class ReplayReport:
    """What :func:`replay` found. ``identical``: the rerun's JSON is byte for byte the
    file's. ``consistent``: the file's fingerprint is that of the configuration it
    holds, run by the napikit version it names (``False``: edited, or no fingerprint).
    """

    path: str
    identical: bool
    differences: tuple[Difference, ...]
    recorded_version: str
    recorded_fingerprint: str | None
    consistent: bool
    fingerprint: str
    result: Result

    @property
    def same_version(self) -> bool:
        """The result was written by this napikit version."""
        return self.recorded_version == __version__

    def lines(self, limit: int = 20) -> list[str]:
        """The report as text: notes, then the verdict and at most ``limit`` of the
        differing fields (the rest counted)."""
        out = []
        if not self.same_version:
            out.append(
                f"note: the result is from napikit {self.recorded_version}, this is napikit "
                f"{__version__}, so the fingerprint differs ({self.recorded_fingerprint} -> "
                f"{self.fingerprint}); rerun anyway"
            )
        if self.recorded_fingerprint is None:
            out.append("note: the result holds no fingerprint (written before napikit "
                       "had them)")
        elif not self.consistent:
            out.append(f"note: the recorded fingerprint {self.recorded_fingerprint} is not "
                       "that of the configuration the result holds (was the file edited?)")
        if self.identical:
            out.append(f"{self.path}: identical: the rerun gives the same "
                       f"{len(self.result.to_json().encode())} bytes (fingerprint "
                       f"{self.fingerprint})")
            return out
        if not self.differences:
            out.append(f"{self.path}: the rerun holds the same values, but its bytes "
                       "differ (was the file reformatted?)")
            return out
        n = len(self.differences)
        out.append(f"{self.path}: the rerun differs in {n} field{'s' if n > 1 else ''} "
                   "(file -> rerun):")
        out += ["  " + d.line() for d in self.differences[:limit]]
        if n > limit:
            out.append(f"  ... and {n - limit} more")
        return out


def replay(path: str | Path) -> ReplayReport:
    """Rerun the result file at ``path`` (a :meth:`Result.to_json <napikit.Result.
    to_json>` text; read as data) from the configuration it holds, and compare the new
    result's JSON with the file byte for byte. A file that is not a napikit result is a
    one-line :class:`~napikit.errors.NapikitError`; a result from another napikit
    version is still rerun (see :attr:`ReplayReport.same_version`)."""
    from napikit.simulation import Simulation

    text = _read(path, "result file")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise NapikitError(f"{path}: not a napikit result: not JSON ({e})") from None
    if (not isinstance(doc, dict) or not isinstance(doc.get("napikit_version"), str)
            or not isinstance(doc.get("config"), dict)):
        raise NapikitError(f"{path}: not a napikit result (no napikit_version and config; "
                           "napikit run --json writes one)")
    recorded = doc.get("fingerprint")
    try:
        config = config_from_dict(doc["config"])
    except ConfigError as e:
        raise ConfigError(f"config.{e.field}", e.allowed, e.got) from None
    consistent = isinstance(recorded, str) and recorded == fingerprint_of(
        config_dict(config), doc["napikit_version"])
    result = Simulation(config).run()
    new_text = result.to_json()
    identical = new_text == text
    differences = () if identical else tuple(_diff(doc, json.loads(new_text)))
    return ReplayReport(
        path=str(path), identical=identical, differences=differences,
        recorded_version=doc["napikit_version"],
        recorded_fingerprint=recorded if isinstance(recorded, str) else None,
        consistent=consistent, fingerprint=result.fingerprint, result=result,
    )
