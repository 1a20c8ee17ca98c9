"""Range functions computed window by window: ``deriv``, ``predict_linear``, ``holt_winters``.

They are rare in dashboards (``predict_linear`` mostly in disk-space alerts) and each is a
sequential recurrence, so they run as plain Python over each non-empty window rather than
as numpy passes (``rangevec``). The arithmetic is Prometheus 2.42's ``linearRegression``
(Kahan sums, the constant-series shortcut) and ``funcHoltWinters``, in the same order.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from collectors._core.errors import QueryExecutionError
from collectors.promql.columns import BoolArray, FloatArray, Windows

Result = tuple[FloatArray, BoolArray]
WindowFunc = Callable[[list[int], list[float], int, list[float]], float]
"""``(times_ms, values, step_ms, params) -> value`` over one window of two samples or more."""


def _kahan_inc(inc: float, total: float, c: float) -> tuple[float, float]:
    t = total + inc
    if abs(total) >= abs(inc):
        c += (total - t) + inc
    else:
        c += (inc - t) + total
    return t, c


def linear_regression(
    times: list[int], values: list[float], intercept_ms: int
) -> tuple[float, float]:
    """Prometheus's ``linearRegression``: slope per second and the intercept at ``intercept_ms``."""
    n = 0.0
    sum_x = c_x = sum_y = c_y = sum_xy = c_xy = sum_x2 = c_x2 = 0.0
    init_y = values[0]
    const_y = True
    for i, (t, v) in enumerate(zip(times, values, strict=True)):
        if const_y and i > 0 and v != init_y:
            const_y = False
        n += 1.0
        x = (t - intercept_ms) / 1e3
        sum_x, c_x = _kahan_inc(x, sum_x, c_x)
        sum_y, c_y = _kahan_inc(v, sum_y, c_y)
        sum_xy, c_xy = _kahan_inc(x * v, sum_xy, c_xy)
        sum_x2, c_x2 = _kahan_inc(x * x, sum_x2, c_x2)
    if const_y:
        if math.isinf(init_y):
            return math.nan, math.nan
        return 0.0, init_y
    sum_x, sum_y, sum_xy, sum_x2 = sum_x + c_x, sum_y + c_y, sum_xy + c_xy, sum_x2 + c_x2
    cov_xy = sum_xy - sum_x * sum_y / n
    var_x = sum_x2 - sum_x * sum_x / n
    slope = _div(cov_xy, var_x)
    return slope, sum_y / n - slope * sum_x / n


def _div(a: float, b: float) -> float:
    if b == 0:
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a)
    return a / b


def _deriv(times: list[int], values: list[float], _step: int, _p: list[float]) -> float:
    return linear_regression(times, values, times[0])[0]


def _predict_linear(times: list[int], values: list[float], step: int, p: list[float]) -> float:
    slope, intercept = linear_regression(times, values, step)
    return slope * p[0] + intercept


def _holt_winters(times: list[int], values: list[float], _step: int, p: list[float]) -> float:
    sf, tf = p[0], p[1]
    s0, s1, b = 0.0, values[0], values[1] - values[0]
    for i in range(1, len(values)):
        x = sf * values[i]
        if i > 1:
            b = tf * (s1 - s0) + (1 - tf) * b
        y = (1 - sf) * (s1 + b)
        s0, s1 = s1, x + y
    return s1


def _check_factors(w: Windows, params: FloatArray) -> None:
    """2.42 refuses bad factors at the first step that has a sample to smooth."""
    busy = (w.counts >= 1).any(axis=0)
    for i in np.flatnonzero(busy):
        sf, tf = float(params[0][i]), float(params[1][i])
        if not 0 < sf < 1:
            raise QueryExecutionError(
                f"invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:f}"
            )
        if not 0 < tf < 1:
            raise QueryExecutionError(f"invalid trend factor. Expected: 0 < tf < 1, got: {tf:f}")


WINDOW_FUNCTIONS: dict[str, WindowFunc] = {
    "deriv": _deriv,
    "predict_linear": _predict_linear,
    "holt_winters": _holt_winters,
    "double_exponential_smoothing": _holt_winters,  # Prometheus 3's name
}


def apply_windowed(name: str, w: Windows, params: FloatArray, steps: list[int]) -> Result:
    """``name`` over every window of two samples or more (the others are absent)."""
    if name in ("holt_winters", "double_exponential_smoothing"):
        _check_factors(w, params)
    fn = WINDOW_FUNCTIONS[name]
    ok = w.counts >= 2
    out = np.zeros(ok.shape)
    ts, vs = w.ts.tolist(), w.vs.tolist()
    for r, i in zip(*np.nonzero(ok), strict=True):
        lo, hi = int(w.lo[r, i]), int(w.hi[r, i])
        p = [float(row[i]) for row in params]
        out[r, i] = fn(ts[lo:hi], vs[lo:hi], steps[i], p)
    return out, ok
