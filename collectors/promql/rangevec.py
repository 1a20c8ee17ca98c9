"""Range functions over every series at every step at once (numpy), bit-for-bit as before.

Each function takes the ``Windows`` of a range selection and returns a value and a
presence flag per ``(series, step)``. The arithmetic is Prometheus 2.42's
(``extrapolatedRate``, ``instantValue``, ``aggrOverTime`` in promql/functions.go) done in
the same order, so results do not move by a rounding step:

- sums that Prometheus runs sample by sample (Kahan sums, running means, min/max with
  their NaN rules, counter-reset corrections) are run position by position *across all
  windows at once*: pass ``k`` adds the ``k``-th sample of every window long enough;
- counts (``changes``, ``resets``) come from prefix sums of 0/1 flags, which are exact.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from collectors.promql.columns import BoolArray, FloatArray, IntArray, Windows
from collectors.promql.rangefuncs import quantile

Result = tuple[FloatArray, BoolArray]
VecFunc = Callable[[Windows, FloatArray], Result]


def _at(w: Windows, index: IntArray) -> tuple[IntArray, FloatArray]:
    """Timestamps and values at ``index`` (clipped, so empty windows read something)."""
    safe = np.clip(index, 0, max(len(w.ts) - 1, 0))
    if not len(w.ts):
        return np.zeros(index.shape, dtype=np.int64), np.zeros(index.shape)
    return w.ts[safe], w.vs[safe]


def _kahan(inc: FloatArray, total: FloatArray, comp: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``kahanSumInc`` elementwise."""
    t = total + inc
    comp = np.where(
        np.isinf(t),
        0.0,
        np.where(
            np.abs(total) >= np.abs(inc), comp + ((total - t) + inc), comp + ((inc - t) + total)
        ),
    )
    return t, comp


def _reset_corrections(w: Windows, result: FloatArray, ok: BoolArray) -> FloatArray:
    """``result += prev`` for every counter reset inside each window, in sample order."""
    vs = w.vs
    if len(vs) < 2:
        return result
    is_reset = vs[1:] < vs[:-1]
    boundaries = w.first[w.first > 0] - 1
    is_reset[boundaries] = False  # the first sample of a series follows another series
    positions = np.flatnonzero(is_reset) + 1
    if not len(positions):
        return result
    corrections = vs[positions - 1]
    a = np.searchsorted(positions, w.lo + 1)
    b = np.searchsorted(positions, w.hi)
    count = np.where(ok, b - a, 0)
    result = result.copy()
    for k in range(int(count.max())):
        m = count > k
        result[m] += corrections[a[m] + k]
    return result


def _extrapolated(w: Windows, *, is_counter: bool, is_rate: bool) -> Result:
    n = w.counts
    ok = n >= 2
    first_t, first_v = _at(w, w.lo)
    last_t, last_v = _at(w, w.hi - 1)
    result = last_v - first_v
    if is_counter:
        result = np.where(first_v < 0, result + 0.0, result)  # Prometheus adds 0 there
        result = _reset_corrections(w, result, ok)
    to_start = (first_t - w.starts) / 1000
    to_end = (w.refs - last_t) / 1000
    sampled = (last_t - first_t) / 1000
    average = sampled / np.maximum(n - 1, 1)
    if is_counter:
        to_zero = sampled * (first_v / result)
        use = (result > 0) & (first_v >= 0) & (to_zero < to_start)
        to_start = np.where(use, to_zero, to_start)
    threshold = average * 1.1
    interval = sampled + np.where(to_start < threshold, to_start, average / 2)
    interval = interval + np.where(to_end < threshold, to_end, average / 2)
    result = result * (interval / sampled)
    if is_rate:
        result = result / (w.range_ms / 1000)
    return result, ok


def _instant(w: Windows, *, is_rate: bool) -> Result:
    ok = w.counts >= 2
    last_t, last_v = _at(w, w.hi - 1)
    prev_t, prev_v = _at(w, w.hi - 2)
    result = last_v - prev_v
    if is_rate:
        result = np.where(last_v < prev_v, last_v, result)
    interval = last_t - prev_t
    ok &= interval != 0
    if is_rate:
        result = result / (interval / 1000)
    return result, ok


def _pair_count(w: Windows, flags: BoolArray) -> Result:
    """How many ``i`` in ``(lo, hi)`` have ``flags[i - 1]`` (a pair ``i-1, i`` counted)."""
    prefix = np.zeros(len(w.vs), dtype=np.int64)
    np.cumsum(flags, out=prefix[1:])
    ok = w.counts >= 1
    last = np.clip(w.hi - 1, 0, None)
    first = np.clip(w.lo, 0, max(len(prefix) - 1, 0))
    if not len(prefix):
        return np.zeros(w.lo.shape), ok
    return (prefix[last] - prefix[first]).astype(np.float64), ok


def _changes(w: Windows, _p: FloatArray) -> Result:
    cur, prev = w.vs[1:], w.vs[:-1]
    return _pair_count(w, (cur != prev) & ~(np.isnan(cur) & np.isnan(prev)))


def _resets(w: Windows, _p: FloatArray) -> Result:
    return _pair_count(w, w.vs[1:] < w.vs[:-1])


class _Passes:
    """Windows that hold samples, longest first, so pass ``k`` works on a prefix."""

    def __init__(self, w: Windows) -> None:
        n = w.counts.ravel()
        self.shape = w.counts.shape
        self.ok = n >= 1
        order = np.flatnonzero(self.ok)
        order = order[np.argsort(-n[order], kind="stable")]
        self.order = order
        self.lo = w.lo.ravel()[order]
        self.n = n[order]
        self.vs = w.vs
        self.longest = int(self.n[0]) if len(order) else 0
        # active[k]: how many windows have more than k samples
        self.active = np.searchsorted(-self.n, -np.arange(self.longest), side="left")

    def value(self, k: int) -> tuple[int, FloatArray]:
        m = int(self.active[k]) if k < self.longest else 0
        return m, self.vs[self.lo[:m] + k]

    def result(self, values: FloatArray) -> Result:
        out = np.zeros(self.ok.shape)
        out[self.order] = values
        return out.reshape(self.shape), self.ok.reshape(self.shape)


def _sum_over_time(w: Windows, _p: FloatArray) -> Result:
    p = _Passes(w)
    total, comp = np.zeros(len(p.order)), np.zeros(len(p.order))
    for k in range(p.longest):
        m, v = p.value(k)
        total[:m], comp[:m] = _kahan(v, total[:m], comp[:m])
    return p.result(np.where(np.isinf(total), total, total + comp))


def _avg_over_time(w: Windows, _p: FloatArray) -> Result:
    p = _Passes(w)
    mean, comp = np.zeros(len(p.order)), np.zeros(len(p.order))
    for k in range(p.longest):
        m, v = p.value(k)
        count = float(k + 1)
        cur = mean[:m]
        skip = np.isinf(cur) & (
            (np.isinf(v) & ((cur > 0) == (v > 0))) | (~np.isinf(v) & ~np.isnan(v))
        )
        t, c = _kahan(v / count - cur / count, cur, comp[:m])
        mean[:m] = np.where(skip, cur, t)
        comp[:m] = np.where(skip, comp[:m], c)
    return p.result(np.where(np.isinf(mean), mean, mean + comp))


def _extreme(w: Windows, *, largest: bool) -> Result:
    p = _Passes(w)
    _, out = p.value(0)
    out = out.copy()
    for k in range(1, p.longest):
        m, v = p.value(k)
        cur = out[:m]
        better = (v > cur) if largest else (v < cur)
        out[:m] = np.where(better | np.isnan(cur), v, cur)
    return p.result(out)


def _variance(w: Windows) -> Result:
    p = _Passes(w)
    size = len(p.order)
    mean, c_mean, aux, c_aux = (np.zeros(size) for _ in range(4))
    count = np.zeros(size)
    for k in range(p.longest):
        m, v = p.value(k)
        count[:m] += 1
        d = v - (mean[:m] + c_mean[:m])
        mean[:m], c_mean[:m] = _kahan(d / count[:m], mean[:m], c_mean[:m])
        aux[:m], c_aux[:m] = _kahan(d * (v - (mean[:m] + c_mean[:m])), aux[:m], c_aux[:m])
    with np.errstate(invalid="ignore", divide="ignore"):
        return p.result((aux + c_aux) / count)


def _stddev(w: Windows, _p: FloatArray) -> Result:
    var, ok = _variance(w)
    with np.errstate(invalid="ignore"):
        return np.sqrt(var), ok


def _quantile_over_time(w: Windows, phis: FloatArray) -> Result:
    ok = w.counts >= 1
    out = np.zeros(ok.shape)
    for r, i in zip(*np.nonzero(ok), strict=True):
        window = w.vs[w.lo[r, i] : w.hi[r, i]].tolist()
        out[r, i] = quantile(float(phis[i]), window)
    return out, ok


def _count(w: Windows, _p: FloatArray) -> Result:
    return w.counts.astype(np.float64), w.counts >= 1


def _last(w: Windows, _p: FloatArray) -> Result:
    return _at(w, w.hi - 1)[1], w.counts >= 1


def _present(w: Windows, _p: FloatArray) -> Result:
    return np.ones(w.lo.shape), w.counts >= 1


VECTOR_FUNCTIONS: dict[str, VecFunc] = {
    "rate": lambda w, _p: _extrapolated(w, is_counter=True, is_rate=True),
    "increase": lambda w, _p: _extrapolated(w, is_counter=True, is_rate=False),
    "delta": lambda w, _p: _extrapolated(w, is_counter=False, is_rate=False),
    "irate": lambda w, _p: _instant(w, is_rate=True),
    "idelta": lambda w, _p: _instant(w, is_rate=False),
    "changes": _changes,
    "resets": _resets,
    "avg_over_time": _avg_over_time,
    "sum_over_time": _sum_over_time,
    "count_over_time": _count,
    "min_over_time": lambda w, _p: _extreme(w, largest=False),
    "max_over_time": lambda w, _p: _extreme(w, largest=True),
    "last_over_time": _last,
    "present_over_time": _present,
    "stddev_over_time": _stddev,
    "stdvar_over_time": lambda w, _p: _variance(w),
    "quantile_over_time": _quantile_over_time,
}
"""Range functions by name; ``absent_over_time`` is handled by the evaluator."""


def apply(name: str, w: Windows, params: FloatArray) -> Result:
    """``name`` over every window; values are meaningless where the flag is False."""
    with np.errstate(all="ignore"):
        return VECTOR_FUNCTIONS[name](w, params)
