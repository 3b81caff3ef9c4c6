"""``KEY=VALUE`` as a user writes it, below every front end (the command line, sweep
files, the conformance kit): values of unknown type, values of a field's declared type,
policy options, and overrides of ``Config`` fields (``--set``, a sweep's grid)."""

from __future__ import annotations

import argparse
import functools
import typing
from collections.abc import Sequence
from typing import Any

import attrs

from napikit.config import Config, CostModel, KernelParams
from napikit.errors import ConfigError
from napikit.plugins import registry
from napikit.values import integer, number

#: Top-level Config fields ``--set`` may change (the policy has its own flags).
TOP_FIELDS = ("ncpus", "packets", "duration_ns", "drain_ns", "seed", "offline_cpus",
              "sample_interval_ns")
_SECTIONS = {"kernel": KernelParams, "costs": CostModel}


def parse_value(text: str) -> Any:
    """A value of unknown type: a comma-separated list becomes a tuple of values.

    Each value is ``true``/``false``, ``none``, an int, a float, or else the text as
    given (the field's validator then says what it wants).
    """
    if "," in text:
        return tuple(_scalar(part) for part in text.split(","))
    return _scalar(text)


def _scalar(text: str) -> Any:
    word = text.strip().lower()
    if word in ("true", "false"):
        return word == "true"
    if word in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def typed_value(typ: Any, name: str, text: str) -> Any:
    """``text`` as a value of type ``typ`` (``int``, ``float``, ``bool``, ``str``) for
    field ``name``: numbers take units and suffixes (see :func:`integer`); a time is an
    int field named ``*_ns``. Text that is no bool is passed on for the field's validator
    to name."""
    word = text.strip()
    if typ is bool:
        return word.lower() == "true" if word.lower() in ("true", "false") else text
    if typ is int:
        return integer(word, name, time=name.endswith("_ns"))
    if typ is float:
        return number(word, name)
    return text


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _field_value(cls: type, field: str, name: str, text: str) -> Any:
    """``text`` parsed for ``cls``'s attribute ``field`` (``name``: what the user typed),
    by the field's declared type: ``X | None`` takes ``none``, a tuple a comma-separated
    list (empty: no item)."""
    hint = _hints(cls)[field]
    args = typing.get_args(hint)
    if type(None) in args:
        if text.strip().lower() in ("none", "null"):
            return None
        hint = next(a for a in args if a is not type(None))
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return tuple(typed_value(item, name, part) for part in text.split(",")) if text.strip() \
            else ()
    return typed_value(hint, name, text)


def assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (got {text!r})")
    return key.strip(), value


def option_assignment(text: str) -> tuple[str, Any]:
    """A policy option ``KEY=VALUE``, the value parsed by :func:`parse_value`
    (the conformance kit's ``--napikit-option``, which knows no option types)."""
    key, value = assignment(text)
    return key, parse_value(value)


def policy_options(policy: str, assignments: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """``KEY=VALUE`` options of ``policy``, each parsed by the option's declared type (an
    unknown key as :func:`parse_value` would, for the policy to reject by name)."""
    types = {o.name: o.type for o in registry().get(policy).options}
    return {
        key: typed_value(types[key], f"policy_options.{key}", text) if key in types
        else parse_value(text)
        for key, text in assignments
    }


def apply_overrides(config: Config, assignments: Sequence[tuple[str, str]]) -> Config:
    """``config`` with ``FIELD=VALUE`` assignments applied all at once.

    ``FIELD`` is a top-level field, ``kernel.NAME``, ``costs.NAME`` or
    ``workload.NAME`` (every workload having ``NAME``). Cross-field checks (CPU numbers
    against ``ncpus``) see the final configuration, so the order does not matter.
    """
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    workload: dict[str, str] = {}
    for key, text in assignments:
        section, _, name = key.partition(".")
        if section in _SECTIONS and name:
            _check_field(key, name, list(attrs.fields_dict(_SECTIONS[section])), f"{section} field")
            sections[section][name] = _field_value(_SECTIONS[section], name, key, text)
        elif section == "workload" and name:
            workload[name] = text
        else:
            allowed = [*TOP_FIELDS, *(f"{s}.FIELD" for s in _SECTIONS), "workload.FIELD"]
            _check_field(key, key, allowed, "field")
            top[key] = _field_value(Config, key, key, text)
    for section, changes in sections.items():
        if changes:
            top[section] = attrs.evolve(getattr(config, section), **changes)
    if workload:
        top["workloads"] = _evolve_workloads(config.workloads, workload)
    return config.evolve(**top) if top else config


def _check_field(key: str, name: str, allowed: Sequence[str], what: str) -> None:
    if name not in allowed:
        raise ConfigError(key, f"a known {what}, one of: " + ", ".join(allowed), name)


def _evolve_workloads(workloads: tuple[Any, ...], changes: dict[str, str]) -> tuple[Any, ...]:
    fields = [attrs.fields_dict(type(w)) for w in workloads]
    known = list(dict.fromkeys(name for f in fields for name in f))
    kinds = ", ".join(sorted({type(w).__name__ for w in workloads}))
    for name in changes:
        _check_field(f"workload.{name}", name, known,
                     f"field of this scenario's workloads ({kinds})")
    return tuple(
        attrs.evolve(w, **{
            name: _field_value(type(w), name, f"workload.{name}", text)
            for name, text in changes.items() if name in f
        })
        for w, f in zip(workloads, fields, strict=True)
    )
