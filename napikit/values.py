"""What the command line, the study and the sweeps share, below all of them: numbers as
a user writes them (units, suffixes) and the policy lines ``compare`` and the study draw.
"""

from __future__ import annotations

import argparse
import re
from fractions import Fraction

from napikit.errors import ConfigError, NapikitError

#: The classic kernel comes first in ``compare``: the other rows are read against it.
BASELINE = "softirq-ipi"
#: ``compare`` adds this variant whenever ``backlog-threads`` runs: the kernel change's
#: RFC, without the local fast path (the seed story's first claim).
RFC_VARIANT = ("backlog-threads", (("fast_path", False),))

#: Unit suffixes: of a time field (``*_ns``, a plain number is ns), and of any other number.
_TIME_UNITS = {"": 1, "ns": 1, "us": 10**3, "ms": 10**6, "s": 10**9}
_SCALES = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9}
_NUMBER = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:[eE]([+-]?\d+))?([a-zA-Z]*)")
#: Bigger numbers are refused before Python builds them (10**10**9 would take minutes);
#: every bound of a Config field is far below.
_MAX_DIGITS = 100

TIME = "a whole number of ns, with an optional unit ns, us, ms or s (e.g. 100ns, 1.5us, 10ms)"
COUNT = "an integer, with an optional k, M or G suffix (e.g. 20000, 2k, 1.5M, 1e7)"
NUMBER = "a number, with an optional k, M or G suffix (e.g. 500000, 1.5M, 2e6)"


def _exact(text: str, name: str, units: dict[str, int], allowed: str) -> Fraction:
    match = _NUMBER.fullmatch(text.strip())
    if match is None or match[3] not in units:
        raise ConfigError(name, allowed, text)
    mantissa, exponent = match[1], int(match[2] or 0)
    if len(mantissa) > _MAX_DIGITS or abs(exponent) > _MAX_DIGITS:
        raise ConfigError(name, f"a number below 1e{_MAX_DIGITS}, in at most {_MAX_DIGITS} "
                          "digits", text)
    return Fraction(mantissa) * Fraction(10) ** exponent * units[match[3]]


def integer(text: str, name: str, time: bool = False) -> int:
    """``text`` as an integer value of field ``name``, a number of ns if ``time``.
    Suffixes and float notation are exact (``1.5us`` is 1500, ``1e7`` 10**7); a value
    that is not integral (``1.5``, ``1.5ns``) is refused."""
    units, allowed = (_TIME_UNITS, TIME) if time else (_SCALES, COUNT)
    value = _exact(text, name, units, allowed)
    if value.denominator != 1:
        raise ConfigError(name, allowed, text)
    return int(value)


def number(text: str, name: str) -> float:
    """``text`` as a float value of field ``name`` (``1.5M``, ``2e6``)."""
    return float(_exact(text, name, _SCALES, NUMBER))


def at_least_one(text: str) -> int:
    """An argparse type for a count >= 1 (``--jobs``, ``--packets-per-pair 100k``)."""
    try:
        value = integer(text, "")  # 100k, 1e5
    except NapikitError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1 (got {text!r})")
    return value
