"""Prometheus's ``quantile`` (shared by ``quantile`` aggregation and ``quantile_over_time``).

The range functions themselves run on all series and steps at once in ``rangevec``; this
one interpolates over a sorted list, which is per window or per group whatever we do.
"""

from __future__ import annotations

import math


def quantile(q: float, values: list[float]) -> float:
    """Prometheus's ``quantile``: linear interpolation between the two nearest ranks."""
    if not values or math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    values.sort(key=_nan_first)
    n = len(values)
    rank = q * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1.0, lower + 1)
    weight = rank - math.floor(rank)
    return values[int(lower)] * (1 - weight) + values[int(upper)] * weight


def _nan_first(v: float) -> tuple[int, float]:
    """Go's ``vectorByValueHeap`` ordering: NaN sorts before every number."""
    return (0, 0.0) if math.isnan(v) else (1, v)
