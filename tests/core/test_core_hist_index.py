"""The histogram index (napikit/core/metrics.pxi: hist_index, a count of leading zeros)
against the loop over shifts it replaced, written in Python: the same bucket for every
i64, so every histogram and percentile stays as it was.
"""

from __future__ import annotations

import random

from napikit._core import hist_bucket

T_NEVER = (1 << 62) + (1 << 40)


def hist_index_reference(v: int) -> int:
    """The bucket formula of napikit's first histogram (a loop over shifts)."""
    sub, n = 64, 64 * 42
    if v < 2 * sub:
        return v if v > 0 else 0
    shift = 0
    while (v >> shift) >= 2 * sub:
        shift += 1
    if shift + 1 >= n // sub:
        return n - 1
    return (shift + 1) * sub + ((v >> shift) - sub)


def test_hist_index_matches_the_loop_at_every_edge() -> None:
    """Every power of two and its neighbours, every sub-bucket edge of the first powers,
    the i64 extremes and the last bucket's edge."""
    values = {-(1 << 63), -(1 << 62), -1, 0, 1, (1 << 63) - 1, T_NEVER, 1 << 62}
    for k in range(63):
        for d in range(-3, 4):
            v = (1 << k) + d
            if -(1 << 63) <= v < (1 << 63):
                values.add(v)
                values.add(-v)
    for k in range(7, 20):
        for j in range(64, 129):   # each sub-bucket's first value and the one before
            values.update(((j << (k - 7)) - 1, j << (k - 7)))
    values.update(range(0, 70000))
    vs = sorted(values)
    assert hist_bucket(vs) == [hist_index_reference(v) for v in vs]


def test_hist_index_matches_the_loop_on_random_values() -> None:
    """200,000 values: uniform bit lengths (each power of two as likely), and uniform
    over the whole i64 range."""
    rng = random.Random(12)
    vs = [rng.getrandbits(rng.randrange(1, 64)) for _ in range(100000)]
    vs += [rng.randrange(-(1 << 63), 1 << 63) for _ in range(100000)]
    assert hist_bucket(vs) == [hist_index_reference(v) for v in vs]
