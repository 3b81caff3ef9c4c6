"""Means with 95 % confidence intervals over repeated runs (seeds).

The interval is Student's t: ``mean +- t(0.975, n-1) * s / sqrt(n)`` with ``s`` the
sample standard deviation; seeds are independent replications of one configuration.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from attrs import frozen

#: t(0.975, df) for df = 1..30; above 30 the normal's 1.96 is within 4 %.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def t975(df: int) -> float:
    """Student's t quantile 0.975 with ``df`` degrees of freedom (df >= 1)."""
    return _T975[df - 1] if df <= len(_T975) else 1.96


@frozen
class Estimate:
    """A figure's mean over ``n`` runs and the half-width of its 95 % confidence
    interval (0 for a single run, which gives no interval)."""

    mean: float
    ci95: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Estimate:
        """The estimate from the runs' ``values``."""
        n = len(values)
        if n == 0:
            raise ValueError("no values")
        mean = statistics.fmean(values)
        half = t975(n - 1) * statistics.stdev(values) / math.sqrt(n) if n > 1 else 0.0
        return cls(mean, half, n)

    def show(self, fmt: str = ",.0f") -> str:
        """``mean`` or ``mean ±half-width`` in ``fmt``."""
        if self.n == 1:
            return format(self.mean, fmt)
        return f"{self.mean:{fmt}} ±{self.ci95:{fmt}}"
