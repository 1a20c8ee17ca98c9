"""The reference StatsD daemon's flush math and graphite names, reproduced operation by operation.

meshfed is compared with npm ``statsd`` 0.9 field by field (relative tolerance 1e-9), so the
arithmetic follows ``lib/process_metrics.js`` literally: values sorted ascending, running
sums left to right (never ``math.fsum``), ``Math.round`` half-up, population standard
deviation from a second pass, percentile names from JavaScript's number formatting
(``90.5`` -> ``90_5``, ``-10`` -> ``top10``). Pure functions, no state.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from itertools import accumulate

_NOT_NAME = re.compile(r"[^a-zA-Z0-9_:]")
_NOT_LABEL = re.compile(r"[^a-zA-Z0-9_]")
_JS_INT_LIMIT = 1e21


def js_round(x: float) -> int:
    """``Math.round`` for x >= 0: halves go up (``floor(x + 0.5)`` loses 0.49999999999999994)."""
    low = math.floor(x)
    return low + 1 if x - low >= 0.5 else low


def js_number_text(x: float) -> str:
    """``'' + x`` for the numbers a percentile list holds."""
    if x.is_integer() and abs(x) < _JS_INT_LIMIT:
        return str(int(x))
    text = repr(x)
    return text.replace("e-0", "e-").replace("e+0", "e+") if "e" in text else text


def percentile_suffix(pct: float) -> str:
    """``90`` -> ``90``, ``90.5`` -> ``90_5``, ``-10`` -> ``top10`` (first '.' and '-' only)."""
    return js_number_text(pct).replace(".", "_", 1).replace("-", "top", 1)


def timer_stats(
    values: Sequence[float], count: float, percentiles: Sequence[float], interval_ms: int
) -> dict[str, float]:
    """``timer_data[key]`` of the reference for one timer, in the reference's field order.

    ``values`` are the raw values of the interval (any order), ``count`` is Σ 1/rate.
    """
    if not values:
        return {"count": 0.0, "count_ps": 0.0}
    ordered = sorted(values)
    n = len(ordered)
    low, high = ordered[0], ordered[-1]
    cumulative = list(accumulate(ordered))
    cumulative_sq = list(accumulate(v * v for v in ordered))
    out: dict[str, float] = {}
    total, total_sq, mean, boundary = low, low * low, low, high
    for pct in percentiles:
        in_threshold = n
        if n > 1:
            in_threshold = js_round(abs(pct) / 100 * n)
            if in_threshold == 0:
                continue
            if pct > 0:
                boundary = ordered[in_threshold - 1]
                total = cumulative[in_threshold - 1]
                total_sq = cumulative_sq[in_threshold - 1]
            else:
                boundary = ordered[n - in_threshold]
                below = n - in_threshold - 1
                total = cumulative[n - 1] - (cumulative[below] if below >= 0 else math.nan)
                total_sq = cumulative_sq[n - 1] - (cumulative_sq[below] if below >= 0 else math.nan)
            mean = total / in_threshold
        suffix = percentile_suffix(pct)
        out["count_" + suffix] = float(in_threshold)
        out["mean_" + suffix] = mean
        out[("upper_" if pct > 0 else "lower_") + suffix] = boundary
        out["sum_" + suffix] = total
        out["sum_squares_" + suffix] = total_sq
    total, total_sq = cumulative[-1], cumulative_sq[-1]
    mean = total / n
    diffs = 0.0
    for v in ordered:
        diffs += (v - mean) * (v - mean)
    mid = n // 2
    median = ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    out["std"] = math.sqrt(diffs / n)
    out["upper"] = high
    out["lower"] = low
    out["count"] = count
    out["count_ps"] = count / (interval_ms / 1000)
    out["sum"] = total
    out["sum_squares"] = total_sq
    out["mean"] = mean
    out["median"] = median
    return out


def metric_name(*parts: str) -> str:
    """Graphite path -> Prometheus name: ``stats.timers.app.lat`` -> ``stats_timers_app_lat``.

    Dots and every other character outside ``[a-zA-Z0-9_:]`` (the reference's keys may hold
    ``-``, ``;`` and ``=``) become ``_``.
    """
    return _NOT_NAME.sub("_", ".".join(parts))


def label_name(tag: str) -> str:
    """A DogStatsD tag name as a Prometheus label name (``__`` prefix and digits escaped)."""
    name = _NOT_LABEL.sub("_", tag)
    if name[:1].isdigit():
        name = "_" + name
    if name.startswith("__"):
        name = "tag" + name
    return name
