"""Element-wise functions added for 2.42 parity: trigonometry, deg/rad, and the date functions.

Trigonometry runs numpy's ufuncs over one step's values: they follow IEEE 754 the way Go's
``math`` package does (``sin(Inf)`` is NaN, ``atanh(1)`` is +Inf, ``cosh(1000)`` is +Inf)
where Python's ``math`` raises. The date functions read a value as seconds since the epoch
in UTC and compute the calendar with integer arithmetic (days from civil dates), so any
int64 time works as it does in Go, not only Python ``datetime``'s years 1 to 9999.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from collectors.promql.columns import FloatArray
from collectors.promql.labels import Sample, drop_name

TRIG: dict[str, Callable[[FloatArray], FloatArray]] = {
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos,
    "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh,
    "asinh": np.arcsinh, "acosh": np.arccosh, "atanh": np.arctanh,
    "deg": lambda v: v * 180 / math.pi, "rad": lambda v: v * math.pi / 180,
}  # fmt: skip


def trig(name: str, vector: list[Sample]) -> list[Sample]:
    if not vector:
        return []
    with np.errstate(all="ignore"):
        values = TRIG[name](np.asarray([v for _, v in vector], dtype=np.float64))
    return [(drop_name(labels), v) for (labels, _), v in zip(vector, values.tolist(), strict=True)]


def _civil(days: int) -> tuple[int, int, int]:
    """Year, month, day of ``days`` since 1970-01-01 (H. Hinnant's ``civil_from_days``)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_BEFORE_MONTH = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)


def _days_in_month(seconds: int) -> float:
    year, month, _ = _civil(seconds // 86_400)
    return float(29 if month == 2 and _leap(year) else _MONTH_DAYS[month - 1])


def _day_of_year(seconds: int) -> float:
    year, month, day = _civil(seconds // 86_400)
    return float(_BEFORE_MONTH[month - 1] + day + (month > 2 and _leap(year)))


DATE: dict[str, Callable[[int], float]] = {
    "year": lambda s: float(_civil(s // 86_400)[0]),
    "month": lambda s: float(_civil(s // 86_400)[1]),
    "day_of_month": lambda s: float(_civil(s // 86_400)[2]),
    "day_of_week": lambda s: float((s // 86_400 + 4) % 7),
    "day_of_year": _day_of_year,
    "days_in_month": _days_in_month,
    "hour": lambda s: float(s % 86_400 // 3600),
    "minute": lambda s: float(s % 3600 // 60),
}
"""Go's ``time.Time`` accessors, of whole seconds since the epoch in UTC."""


def date(name: str, vector: list[Sample]) -> list[Sample]:
    """``name(v)``: each value's calendar field; NaN and infinities stay NaN."""
    fn = DATE[name]
    out = []
    for labels, v in vector:
        finite = not (math.isnan(v) or math.isinf(v))
        out.append((drop_name(labels), fn(int(v)) if finite else math.nan))
    return out


def date_now(name: str, time_ms: int) -> list[Sample]:
    """``name()``: the calendar field of the evaluation time (Go: ``time.Unix(ts/1000)``)."""
    seconds = abs(time_ms) // 1000 * (1 if time_ms >= 0 else -1)  # Go's / truncates
    return [((), DATE[name](seconds))]
