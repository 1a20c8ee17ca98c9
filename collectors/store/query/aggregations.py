"""Aggregation operators over one step's instant vector.

``by`` keeps only the listed labels, ``without`` drops the listed ones and ``__name__``.
Running formulas are Prometheus 2.42's (promql/engine.go ``aggregation``): incremental
mean for ``avg``, Welford for ``stddev``/``stdvar`` (population), NaN-aware ``min``/``max``,
heap semantics for ``topk``/``bottomk`` (first seen wins ties), ``quantile`` interpolation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from collectors.store.query.errors import QueryExecutionError
from collectors.store.query.rangefuncs import quantile
from collectors.store.query.values import (
    METRIC_NAME,
    Labels,
    Sample,
    drop_labels,
    format_float,
    keep_only,
    set_label,
)

_INT64_MAX = 2**63 - 1


def group_key(labels: Labels, without: bool, grouping: tuple[str, ...]) -> Labels:
    if without:
        return drop_labels(labels, (*grouping, METRIC_NAME))
    return keep_only(labels, grouping)


@dataclass(slots=True)
class _Group:
    labels: Labels
    value: float
    mean: float
    count: int
    values: list[float] = field(default_factory=list)
    members: list[Sample] = field(default_factory=list)


def aggregate(
    op: str,
    vector: list[Sample],
    *,
    without: bool,
    grouping: tuple[str, ...],
    param: float | str | None,
) -> list[Sample]:
    """One step of ``op``; ``param`` is topk's k, quantile's phi or count_values's label."""
    if op in ("topk", "bottomk"):
        assert isinstance(param, float)
        return _top(vector, without, grouping, param, largest=op == "topk")
    if op == "count_values":
        assert isinstance(param, str)
        return _count_values(vector, without, grouping, param)
    groups: dict[Labels, _Group] = {}
    for labels, v in vector:
        key = group_key(labels, without, grouping)
        g = groups.get(key)
        if g is None:
            groups[key] = _Group(key, v, v, 1, [v] if op == "quantile" else [])
            if op in ("stddev", "stdvar"):
                groups[key].value = 0.0
            continue
        _add(op, g, v)
    out = []
    for g in groups.values():
        out.append((g.labels, _finish(op, g, param)))
    return out


def _add(op: str, g: _Group, v: float) -> None:
    if op == "sum":
        g.value += v
    elif op == "avg":
        g.count += 1
        if math.isinf(g.mean):
            if math.isinf(v) and (g.mean > 0) == (v > 0):
                return
            if not math.isinf(v) and not math.isnan(v):
                return
        g.mean += v / g.count - g.mean / g.count
    elif op in ("count", "group"):
        g.count += 1
    elif op == "max":
        if g.value < v or math.isnan(g.value):
            g.value = v
    elif op == "min":
        if g.value > v or math.isnan(g.value):
            g.value = v
    elif op in ("stddev", "stdvar"):
        g.count += 1
        d = v - g.mean
        g.mean += d / g.count
        g.value += d * (v - g.mean)
    elif op == "quantile":
        g.values.append(v)


def _finish(op: str, g: _Group, param: float | str | None) -> float:
    if op == "avg":
        return g.mean
    if op == "count":
        return float(g.count)
    if op == "group":
        return 1.0
    if op == "stdvar":
        return g.value / g.count
    if op == "stddev":
        return math.sqrt(g.value / g.count)
    if op == "quantile":
        assert isinstance(param, float)
        return quantile(param, g.values)
    return g.value


def _top(
    vector: list[Sample], without: bool, grouping: tuple[str, ...], k_param: float, *, largest: bool
) -> list[Sample]:
    if math.isnan(k_param) or not (-(2**63) <= k_param <= _INT64_MAX):
        raise QueryExecutionError(f"Scalar value {format_float(k_param)} overflows int64")
    k = int(k_param)
    if k < 1:
        return []
    groups: dict[Labels, list[Sample]] = {}
    for sample in vector:
        key = group_key(sample[0], without, grouping)
        kept = groups.setdefault(key, [])
        if len(kept) < k:
            kept.append(sample)
            continue
        worst_i = _worst(kept, largest=largest)
        worst = kept[worst_i][1]
        v = sample[1]
        if largest:
            better = worst < v or (math.isnan(worst) and not math.isnan(v))
        else:
            better = worst > v or (math.isnan(worst) and not math.isnan(v))
        if better:
            kept[worst_i] = sample
    out: list[Sample] = []
    for kept in groups.values():
        out.extend(sorted(kept, key=lambda s: _rank(s[1]), reverse=largest))
    return out


def _rank(v: float) -> float:
    return -math.inf if math.isnan(v) else v


def _worst(kept: list[Sample], *, largest: bool) -> int:
    """Index of the element a better one would replace (the heap's top)."""
    best_i = 0
    for i in range(1, len(kept)):
        a, b = kept[i][1], kept[best_i][1]
        worse = a < b if largest else a > b
        if (math.isnan(a) and not math.isnan(b)) or (not math.isnan(b) and worse):
            best_i = i
    return best_i


def _count_values(
    vector: list[Sample], without: bool, grouping: tuple[str, ...], label: str
) -> list[Sample]:
    counts: dict[Labels, float] = {}
    for labels, v in vector:
        key = set_label(group_key(labels, without, grouping), label, format_float(v))
        counts[key] = counts.get(key, 0.0) + 1
    return list(counts.items())
