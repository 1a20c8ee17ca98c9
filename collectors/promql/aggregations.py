"""Aggregation operators over one step's instant vector.

``by`` keeps only the listed labels, ``without`` drops the listed ones and ``__name__``.
Running formulas are Prometheus 2.42's (promql/engine.go ``aggregation``): incremental
mean for ``avg``, Welford for ``stddev``/``stdvar`` (population), NaN-aware ``min``/``max``,
heap semantics for ``topk``/``bottomk`` (first seen wins ties), ``quantile`` interpolation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from collectors._core.errors import QueryExecutionError
from collectors.promql.columns import Block, BoolArray, FloatArray
from collectors.promql.labels import METRIC_NAME, Labels, Sample, drop_labels, keep_only, set_label
from collectors.promql.rangefuncs import quantile
from collectors.promql.values import format_float

_INT64_MAX = 2**63 - 1

BLOCK_OPS = frozenset(("sum", "avg", "count", "group", "min", "max", "stddev", "stdvar"))
"""Operators ``aggregate_block`` evaluates on all steps at once."""


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
        out.extend(sorted(kept, key=lambda s: _rank(s[1], largest=largest), reverse=largest))
    return out


def _rank(v: float, *, largest: bool) -> float:
    """Sort key putting NaN last either way (Go's reversed value heaps)."""
    if math.isnan(v):
        return -math.inf if largest else math.inf
    return v


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


def aggregate_block(op: str, block: Block, *, without: bool, grouping: tuple[str, ...]) -> Block:
    """``op`` (one of ``BLOCK_OPS``) at every step at once, with the per-step arithmetic of
    ``aggregate``: each group's cells are folded in row order, so sums round the same."""
    index: dict[Labels, int] = {}
    gids = [
        index.setdefault(group_key(labels, without, grouping), len(index))
        for labels in block.labels
    ]
    gid = np.asarray(gids, dtype=np.int64)
    shape = (len(index), block.values.shape[1])
    counts = np.zeros(shape)
    np.add.at(counts, gid, block.present.astype(np.float64))
    present = counts > 0
    if op == "count":
        return Block(list(index), counts, present)
    if op == "group":
        return Block(list(index), np.ones(shape), present)
    if op == "sum":
        # -0.0 + v == v for every v, so starting from -0.0 is "the first value, then +="
        total = np.full(shape, -0.0)
        rows, cols = np.nonzero(block.present)
        np.add.at(total, (gid[rows], cols), block.values[rows, cols])  # in row order
        return Block(list(index), total, present)
    with np.errstate(all="ignore"):
        values = _fold(op, gid, block, shape)
    return Block(list(index), values, present)


def _fold(op: str, gid: np.ndarray, block: Block, shape: tuple[int, int]) -> FloatArray:
    """Row by row (each row a whole step vector) for the order-sensitive operators."""
    value = np.zeros(shape)
    mean = np.zeros(shape)
    count = np.zeros(shape)
    seen: BoolArray = np.zeros(shape, dtype=np.bool_)
    for r in range(len(block.labels)):
        g = int(gid[r])
        p, v = block.present[r], block.values[r]
        if not p.any():
            continue
        first = p & ~seen[g]
        more = p & seen[g]
        count[g] += p
        c, cur = count[g], value[g]
        if op == "max":
            better = (cur < v) | np.isnan(cur)
            value[g] = np.where(first | (more & better), v, cur)
        elif op == "min":
            better = (cur > v) | np.isnan(cur)
            value[g] = np.where(first | (more & better), v, cur)
        elif op == "avg":
            m = mean[g]
            skip = np.isinf(m) & (
                (np.isinf(v) & ((m > 0) == (v > 0))) | (~np.isinf(v) & ~np.isnan(v))
            )
            mean[g] = np.where(first, v, np.where(more & ~skip, m + (v / c - m / c), m))
        else:  # stddev, stdvar: Welford from the first value
            m = mean[g]
            d = v - m
            new_mean = m + d / c
            mean[g] = np.where(first, v, np.where(more, new_mean, m))
            value[g] = np.where(first, 0.0, np.where(more, cur + d * (v - new_mean), cur))
        seen[g] |= p
    if op == "avg":
        return mean
    if op in ("stddev", "stdvar"):
        var = value / count
        return np.sqrt(var) if op == "stddev" else var
    return value
