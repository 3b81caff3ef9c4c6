"""Latency histograms (napikit/core/metrics.pxi): the bucket edges and the percentiles
a run reports, pinned with hand-computed values.

Buckets are exact below 128 ns, then 64 per power of two: a value ``v`` from 128 up,
with ``k`` the shift that brings it under 128, lies in ``[(v >> k) << k, ((v >> k) + 1)
<< k)``. A percentile is its bucket's midpoint, capped at the exact maximum.
"""

from __future__ import annotations

import pytest

from napikit._core import histogram_summary


def test_values_below_128_ns_are_exact():
    """0..127 once each: every percentile is the value at its rank (ceil(n * q))."""
    summary = histogram_summary(range(128))
    assert summary == {"count": 128, "mean_ns": 63, "max_ns": 127,
                       "p50_ns": 63, "p90_ns": 115, "p99_ns": 126, "p999_ns": 127}


def test_one_small_value_is_every_percentile():
    """A single 1 ns value: all percentiles are 1, not a bucket midpoint."""
    summary = histogram_summary([1])
    assert [summary[k] for k in ("p50_ns", "p90_ns", "p99_ns", "p999_ns")] == [1, 1, 1, 1]


def test_a_bucket_above_128_is_eight_ns_wide_at_1000():
    """1000 and 1007 share the bucket [1000, 1008) (shift 3), whose midpoint is 1004;
    1008 opens the next bucket [1008, 1016), reported capped at the maximum 1008."""
    assert histogram_summary([1000, 1007])["p50_ns"] == 1004
    summary = histogram_summary([1000, 1008])
    assert (summary["p50_ns"], summary["p999_ns"]) == (1004, 1008)


def test_the_first_bucket_above_the_exact_range_starts_at_128():
    """128 and 129 share [128, 130): the midpoint 129 is what both report."""
    assert histogram_summary([128, 129])["p50_ns"] == 129
    assert histogram_summary([127, 128])["p50_ns"] == 127


def test_the_tail_percentile_is_the_rare_slow_value():
    """99 values of 10 ns and one of 1000 ns: p99 is still 10 (rank 99), p99.9 is the
    slow one (rank 100), capped at the maximum 1000."""
    summary = histogram_summary([10] * 99 + [1000])
    assert (summary["p50_ns"], summary["p99_ns"], summary["p999_ns"]) == (10, 10, 1000)
    assert summary["mean_ns"] == (99 * 10 + 1000) // 100


def test_mean_of_values_near_the_clock_limit_does_not_wrap():
    """Two values of 2**62: the 128-bit sum keeps the mean exact."""
    assert histogram_summary([2**62, 2**62])["mean_ns"] == 2**62


@pytest.mark.parametrize("value", [-1, 2**62 + 1])
def test_a_value_outside_the_clock_is_refused(value):
    """The histogram takes what a run can produce, 0 to 2**62 ns."""
    with pytest.raises(ValueError, match="must be from 0 to 2"):
        histogram_summary([value])
