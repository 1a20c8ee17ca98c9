"""Functions over one step's instant vector: math, clamp, labels, histogram_quantile.

Pure: each takes the step's samples (and scalar arguments already evaluated for that
step) and returns the step's output. Semantics and error texts follow Prometheus 2.42's
promql/functions.go: math functions drop ``__name__``, the label functions keep it,
``histogram_quantile`` coalesces equal bounds and forces bucket counts monotonic.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from collectors._core.errors import BadQueryError, QueryExecutionError
from collectors.promql.labels import (
    Labels,
    Sample,
    drop_labels,
    drop_name,
    get_label,
    set_label,
)
from collectors.promql.regex import compile_anchored

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _sgn(v: float) -> float:
    if v > 0:
        return 1.0
    if v < 0:
        return -1.0
    return v  # 0, -0 and NaN stay as they are


def _ln(v: float) -> float:
    if v > 0:
        return math.log(v)
    if v == 0:
        return -math.inf
    return math.nan if v < 0 or math.isnan(v) else math.log(v)


def _log_base(base: float) -> Callable[[float], float]:
    def log(v: float) -> float:
        if v > 0:
            return math.log2(v) if base == 2 else math.log10(v)
        if v == 0:
            return -math.inf
        return math.nan

    return log


def _sqrt(v: float) -> float:
    return math.nan if v < 0 else math.sqrt(v)


def _exp(v: float) -> float:
    try:
        return math.exp(v)
    except OverflowError:
        return math.inf


def _ceil(v: float) -> float:
    return v if math.isnan(v) or math.isinf(v) else float(math.ceil(v))


def _floor(v: float) -> float:
    return v if math.isnan(v) or math.isinf(v) else float(math.floor(v))


SIMPLE: dict[str, Callable[[float], float]] = {
    "abs": abs,
    "ceil": _ceil,
    "floor": _floor,
    "sqrt": _sqrt,
    "ln": _ln,
    "log2": _log_base(2),
    "log10": _log_base(10),
    "exp": _exp,
    "sgn": _sgn,
}


def simple(name: str, vector: list[Sample]) -> list[Sample]:
    fn = SIMPLE[name]
    return [(drop_name(labels), fn(v)) for labels, v in vector]


def round_to(vector: list[Sample], to_nearest: float) -> list[Sample]:
    """Go's ``math.Floor(v*inverse+0.5) / inverse`` with IEEE division (``round(x, 0)`` is NaN)."""
    inverse = _ieee_div(1.0, to_nearest)
    out = []
    for labels, v in vector:
        finite = not (math.isnan(v) or math.isinf(v))
        rounded = _ieee_div(_go_floor(v * inverse + 0.5), inverse) if finite else v
        out.append((drop_name(labels), rounded))
    return out


def _ieee_div(a: float, b: float) -> float:
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _go_floor(v: float) -> float:
    return v if math.isnan(v) or math.isinf(v) else float(math.floor(v))


def clamp(vector: list[Sample], low: float, high: float) -> list[Sample]:
    if high < low:
        return []
    return [(drop_name(labels), _go_max(low, _go_min(high, v))) for labels, v in vector]


def clamp_min(vector: list[Sample], low: float) -> list[Sample]:
    return [(drop_name(labels), _go_max(low, v)) for labels, v in vector]


def clamp_max(vector: list[Sample], high: float) -> list[Sample]:
    return [(drop_name(labels), _go_min(high, v)) for labels, v in vector]


def _go_max(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return max(a, b)


def _go_min(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return min(a, b)


@dataclass(frozen=True, slots=True)
class Replacement:
    """``label_replace``'s arguments, validated once per query."""

    dst: str
    template: str
    src: str
    regex: re.Pattern[str]

    @classmethod
    def build(
        cls, dst: str, template: str, src: str, regex: str, *, dotall: bool = False
    ) -> Replacement:
        try:
            compiled = compile_anchored(regex, dotall=dotall)
        except BadQueryError as e:
            raise QueryExecutionError(
                f"invalid regular expression in label_replace(): {regex}"
            ) from e
        if not _LABEL_NAME.match(dst):
            raise QueryExecutionError(f"invalid destination label name in label_replace(): {dst}")
        return cls(dst, template, src, compiled)


def label_replace(vector: list[Sample], r: Replacement) -> list[Sample]:
    out = []
    for labels, v in vector:
        match = r.regex.match(get_label(labels, r.src))
        if match is None:
            out.append((labels, v))
            continue
        out.append((set_label(labels, r.dst, expand(r.template, match)), v))
    return out


def expand(template: str, match: re.Match[str]) -> str:
    """Go's ``Regexp.ExpandString``: ``$1``, ``${1}``, ``$name``, ``$$``; unknown -> empty."""
    out: list[str] = []
    i, n = 0, len(template)
    while i < n:
        j = template.find("$", i)
        if j < 0:
            out.append(template[i:])
            break
        out.append(template[i:j])
        i = j + 1
        if i < n and template[i] == "$":
            out.append("$")
            i += 1
            continue
        name, i_next = _extract(template, i)
        if name is None:
            out.append("$")
            continue
        i = i_next
        out.append(_group(match, name))
    return "".join(out)


def _extract(template: str, i: int) -> tuple[str | None, int]:
    brace = i < len(template) and template[i] == "{"
    k = i + 1 if brace else i
    start = k
    while k < len(template) and (
        template[k].isascii() and (template[k].isalnum() or template[k] == "_")
    ):
        k += 1
    if k == start:
        return None, i
    name = template[start:k]
    if brace:
        if k >= len(template) or template[k] != "}":
            return None, i
        k += 1
    return name, k


def _group(match: re.Match[str], name: str) -> str:
    if name.isdigit():
        num = int(name)
        if num >= 100_000_000:
            return ""
        if num <= (match.re.groups):
            return match.group(num) or ""
        return ""
    try:
        return match.group(name) or ""
    except IndexError:
        return ""


def label_join(vector: list[Sample], dst: str, sep: str, srcs: list[str]) -> list[Sample]:
    if not _LABEL_NAME.match(dst):
        raise QueryExecutionError(f"invalid destination label name in label_join(): {dst}")
    for src in srcs:
        if not _LABEL_NAME.match(src):
            raise QueryExecutionError(f"invalid source label name in label_join(): {src}")
    return [
        (set_label(labels, dst, sep.join(get_label(labels, s) for s in srcs)), v)
        for labels, v in vector
    ]


def histogram_quantile(q: float, vector: list[Sample]) -> list[Sample]:
    """Quantiles from classic ``_bucket`` series grouped by all labels but ``le``.

    As in 2.42, series of different names are different histograms whose results lose the
    name: two of them with the same other labels make the step's vector invalid (the caller
    reports the duplicate label set)."""
    groups: dict[Labels, list[tuple[float, float]]] = {}
    for labels, v in vector:
        le = get_label(labels, "le")
        try:
            bound = _parse_go_float(le)
        except ValueError:
            continue
        key = drop_labels(labels, ("le",))
        groups.setdefault(key, []).append((bound, v))
    return [(drop_name(key), bucket_quantile(q, buckets)) for key, buckets in groups.items()]


def _parse_go_float(text: str) -> float:
    lowered = text.lower()
    if lowered in ("+inf", "inf", "+infinity", "infinity"):
        return math.inf
    if lowered in ("-inf", "-infinity"):
        return -math.inf
    if lowered == "nan":
        return math.nan
    if not text or "_" in text or text.strip() != text:
        raise ValueError(text)
    return float(text)


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    buckets = sorted(buckets, key=lambda b: b[0])
    if not math.isinf(buckets[-1][0]) or buckets[-1][0] < 0:
        return math.nan
    merged: list[list[float]] = []
    for bound, count in buckets:
        if merged and merged[-1][0] == bound:
            merged[-1][1] += count
        else:
            merged.append([bound, count])
    highest = -math.inf
    for b in merged:
        if b[1] > highest:
            highest = b[1]
        elif b[1] < highest:
            b[1] = highest
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    idx = _search(merged, rank)
    if idx == len(merged) - 1:
        return merged[-2][0]
    if idx == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start, end, count = 0.0, merged[idx][0], merged[idx][1]
    if idx > 0:
        start = merged[idx - 1][0]
        count -= merged[idx - 1][1]
        rank -= merged[idx - 1][1]
    return start + (end - start) * (rank / count)


def _search(merged: list[list[float]], rank: float) -> int:
    """Go's ``sort.Search(len-1, count >= rank)``."""
    lo, hi = 0, len(merged) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if not merged[mid][1] >= rank:
            lo = mid + 1
        else:
            hi = mid
    return lo
