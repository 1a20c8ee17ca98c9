"""Functions over a range of samples: rate and friends, and the ``*_over_time`` family.

Each takes one series' window ``ts[lo:hi]``/``vs[lo:hi]`` (at least one sample) plus the
window's bounds and returns a float, or None to drop the series at this step. The
formulas are Prometheus 2.42's (``extrapolatedRate``, ``instantValue``, ``aggrOverTime``
in promql/functions.go), including their treatment of NaN, infinities and resets.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from collectors.store.query.values import kahan_inc


@dataclass(frozen=True, slots=True)
class Window:
    """One series' samples inside one step's range: ``ts[lo:hi]``."""

    ts: list[int]
    vs: list[float]
    lo: int
    hi: int
    range_start_ms: int
    range_end_ms: int
    range_ms: int
    param: float


RangeFunc = Callable[[Window], float | None]


def _extrapolated(w: Window, *, is_counter: bool, is_rate: bool) -> float | None:
    n = w.hi - w.lo
    if n < 2:
        return None
    ts, vs, lo, hi = w.ts, w.vs, w.lo, w.hi
    first_t, last_t, first_v = ts[lo], ts[hi - 1], vs[lo]
    result = vs[hi - 1] - first_v
    if is_counter:
        last = 0.0
        for i in range(lo, hi):
            v = vs[i]
            if v < last:
                result += last
            last = v
    to_start = (first_t - w.range_start_ms) / 1000
    to_end = (w.range_end_ms - last_t) / 1000
    sampled = (last_t - first_t) / 1000
    average = sampled / (n - 1)
    if is_counter and result > 0 and first_v >= 0:
        to_zero = sampled * (first_v / result)
        to_start = min(to_start, to_zero)
    threshold = average * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else average / 2
    interval += to_end if to_end < threshold else average / 2
    result = result * (interval / sampled)
    if is_rate:
        result = result / (w.range_ms / 1000)
    return result


def rate(w: Window) -> float | None:
    return _extrapolated(w, is_counter=True, is_rate=True)


def increase(w: Window) -> float | None:
    return _extrapolated(w, is_counter=True, is_rate=False)


def delta(w: Window) -> float | None:
    return _extrapolated(w, is_counter=False, is_rate=False)


def _instant(w: Window, *, is_rate: bool) -> float | None:
    if w.hi - w.lo < 2:
        return None
    last_t, last_v = w.ts[w.hi - 1], w.vs[w.hi - 1]
    prev_t, prev_v = w.ts[w.hi - 2], w.vs[w.hi - 2]
    result = last_v if is_rate and last_v < prev_v else last_v - prev_v
    interval = last_t - prev_t
    if interval == 0:
        return None
    if is_rate:
        result /= interval / 1000
    return result


def irate(w: Window) -> float | None:
    return _instant(w, is_rate=True)


def idelta(w: Window) -> float | None:
    return _instant(w, is_rate=False)


def changes(w: Window) -> float | None:
    count, prev = 0, w.vs[w.lo]
    for v in w.vs[w.lo + 1 : w.hi]:
        if v != prev and not (math.isnan(v) and math.isnan(prev)):
            count += 1
        prev = v
    return float(count)


def resets(w: Window) -> float | None:
    count, prev = 0, w.vs[w.lo]
    for v in w.vs[w.lo + 1 : w.hi]:
        if v < prev:
            count += 1
        prev = v
    return float(count)


def avg_over_time(w: Window) -> float | None:
    mean, comp, count = 0.0, 0.0, 0.0
    for v in w.vs[w.lo : w.hi]:
        count += 1
        if math.isinf(mean):
            if math.isinf(v) and (mean > 0) == (v > 0):
                continue
            if not math.isinf(v) and not math.isnan(v):
                continue
        mean, comp = kahan_inc(v / count - mean / count, mean, comp)
    return mean if math.isinf(mean) else mean + comp


def sum_over_time(w: Window) -> float | None:
    total, comp = 0.0, 0.0
    for v in w.vs[w.lo : w.hi]:
        total, comp = kahan_inc(v, total, comp)
    return total if math.isinf(total) else total + comp


def count_over_time(w: Window) -> float | None:
    return float(w.hi - w.lo)


def min_over_time(w: Window) -> float | None:
    result = w.vs[w.lo]
    for v in w.vs[w.lo + 1 : w.hi]:
        if v < result or math.isnan(result):
            result = v
    return result


def max_over_time(w: Window) -> float | None:
    result = w.vs[w.lo]
    for v in w.vs[w.lo + 1 : w.hi]:
        if v > result or math.isnan(result):
            result = v
    return result


def last_over_time(w: Window) -> float | None:
    return w.vs[w.hi - 1]


def present_over_time(w: Window) -> float | None:
    return 1.0


def _variance(w: Window) -> float:
    count, mean, c_mean, aux, c_aux = 0.0, 0.0, 0.0, 0.0, 0.0
    for v in w.vs[w.lo : w.hi]:
        count += 1
        d = v - (mean + c_mean)
        mean, c_mean = kahan_inc(d / count, mean, c_mean)
        aux, c_aux = kahan_inc(d * (v - (mean + c_mean)), aux, c_aux)
    return (aux + c_aux) / count


def stdvar_over_time(w: Window) -> float | None:
    return _variance(w)


def stddev_over_time(w: Window) -> float | None:
    return math.sqrt(_variance(w))


def quantile_over_time(w: Window) -> float | None:
    return quantile(w.param, list(w.vs[w.lo : w.hi]))


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


RANGE_FUNCTIONS: dict[str, RangeFunc] = {
    "rate": rate,
    "increase": increase,
    "delta": delta,
    "irate": irate,
    "idelta": idelta,
    "changes": changes,
    "resets": resets,
    "avg_over_time": avg_over_time,
    "sum_over_time": sum_over_time,
    "count_over_time": count_over_time,
    "min_over_time": min_over_time,
    "max_over_time": max_over_time,
    "last_over_time": last_over_time,
    "present_over_time": present_over_time,
    "stddev_over_time": stddev_over_time,
    "stdvar_over_time": stdvar_over_time,
    "quantile_over_time": quantile_over_time,
}
"""Range functions by name; ``absent_over_time`` is handled by the evaluator."""
