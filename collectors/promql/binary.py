"""Binary operators for one evaluation step: arithmetic, comparison and set operators.

Vector matching follows Prometheus 2.42 (``VectorBinop``, ``VectorAnd/Or/Unless``,
``resultMetric``): signatures from ``on``/``ignoring`` (``ignoring`` always ignores
``__name__``), the "one" side must be unique, ``group_left/right`` copy the listed labels
from the one side, and the error texts are Prometheus's (422 execution errors).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from collectors._core.errors import QueryExecutionError
from collectors.promql.ast import Binary
from collectors.promql.labels import (
    METRIC_NAME,
    Labels,
    Sample,
    drop_labels,
    drop_name,
    format_labels,
    get_label,
    keep_only,
    set_label,
)

ARITHMETIC = frozenset({"+", "-", "*", "/", "%", "^", "atan2"})
DROPS_NAME = ARITHMETIC - {"atan2"}
"""2.42's ``shouldDropMetricName``: ``atan2`` keeps the metric name (Prometheus 3 drops it)."""
COMPARISON = frozenset({"==", "!=", ">", "<", ">=", "<="})


def _div(a: float, b: float) -> float:
    if b == 0:
        if a == 0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def _mod(a: float, b: float) -> float:
    if b == 0 or math.isinf(a) or math.isnan(a) or math.isnan(b):
        return math.nan
    if math.isinf(b):
        return a
    return math.fmod(a, b)


def _pow(a: float, b: float) -> float:
    try:
        return math.pow(a, b)
    except OverflowError:
        return math.inf if a > 0 or (b == int(b) and int(b) % 2 == 0) else -math.inf
    except ValueError:
        if a == 0 and b < 0:
            return math.inf
        return math.nan


def _sub(a: float, b: float) -> float:
    return a - b


OPS: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": _sub,
    "*": lambda a, b: a * b,
    "/": _div,
    "%": _mod,
    "^": _pow,
    "atan2": math.atan2,
}
CMPS: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
}


def elem(op: str, lhs: float, rhs: float) -> tuple[float, bool]:
    """Prometheus's ``vectorElemBinop``: (value, keep)."""
    if op in OPS:
        return OPS[op](lhs, rhs), True
    return lhs, CMPS[op](lhs, rhs)


def scalar_scalar(op: str, lhs: float, rhs: float) -> float:
    if op in OPS:
        return OPS[op](lhs, rhs)
    return 1.0 if CMPS[op](lhs, rhs) else 0.0


def drops_name(op: str, *, p3: bool) -> bool:
    """Whether ``op`` drops the metric name (``atan2`` does only in Prometheus 3)."""
    return op in DROPS_NAME or (p3 and op == "atan2")


def vector_scalar(
    op: str, vector: list[Sample], scalar: float, *, swap: bool, return_bool: bool, p3: bool = False
) -> list[Sample]:
    out: list[Sample] = []
    drop = drops_name(op, p3=p3) or return_bool
    for labels, v in vector:
        lv, rv = (scalar, v) if swap else (v, scalar)
        value, keep = elem(op, lv, rv)
        if op in COMPARISON and swap:
            value = rv
        if return_bool:
            value, keep = (1.0 if keep else 0.0), True
        if keep:
            out.append((drop_name(labels) if drop else labels, value))
    return out


def _signature(node: Binary) -> Callable[[Labels], Labels]:
    names = node.matching
    if node.on:
        return lambda labels: keep_only(labels, names)
    ignored = (*names, METRIC_NAME)
    return lambda labels: drop_labels(labels, ignored)


def vector_vector(
    node: Binary, lhs: list[Sample], rhs: list[Sample], *, p3: bool = False
) -> list[Sample]:
    if node.op == "and":
        sig = _signature(node)
        right = {sig(labels) for labels, _ in rhs}
        return [s for s in lhs if sig(s[0]) in right] if rhs else []
    if node.op == "unless":
        sig = _signature(node)
        right = {sig(labels) for labels, _ in rhs}
        return [s for s in lhs if sig(s[0]) not in right]
    if node.op == "or":
        sig = _signature(node)
        left = {sig(labels) for labels, _ in lhs}
        return lhs + [s for s in rhs if sig(s[0]) not in left]
    return _match(node, lhs, rhs, p3=p3)


def _match(node: Binary, lhs: list[Sample], rhs: list[Sample], *, p3: bool) -> list[Sample]:
    if not lhs or not rhs:
        return []
    sig = _signature(node)
    if node.card == "one-to-many":
        lhs, rhs = rhs, lhs
    right: dict[Labels, Sample] = {}
    for sample in rhs:
        key = sig(sample[0])
        dup = right.get(key)
        if dup is not None:
            side = "left" if node.card == "one-to-many" else "right"
            matched = _match_labels(sample[0], node)
            raise QueryExecutionError(
                f"found duplicate series for the match group {format_labels(matched)} on the "
                f"{side} hand-side of the operation: [{format_labels(sample[0])}, "
                f"{format_labels(dup[0])}];many-to-many matching not allowed: matching labels "
                "must be unique on one side"
            )
        right[key] = sample
    matched_sigs: dict[Labels, set[Labels] | None] = {}
    out: list[Sample] = []
    for labels, lv in lhs:
        key = sig(labels)
        found = right.get(key)
        if found is None:
            continue
        vl, vr = lv, found[1]
        if node.card == "one-to-many":
            vl, vr = vr, vl
        value, keep = elem(node.op, vl, vr)
        if node.return_bool:
            value = 1.0 if keep else 0.0
        elif not keep:
            continue
        metric = _result_metric(labels, found[0], node, p3=p3)
        if node.return_bool:
            metric = drop_name(metric)
        if node.card == "one-to-one":
            if key in matched_sigs:
                raise QueryExecutionError(
                    "multiple matches for labels: many-to-one matching must be explicit "
                    "(group_left/group_right)"
                )
            matched_sigs[key] = None
        else:
            inserted = matched_sigs.get(key)
            if inserted is None:
                inserted = set()
                matched_sigs[key] = inserted
            elif metric in inserted:
                raise QueryExecutionError(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                )
            inserted.add(metric)
        out.append((metric, value))
    return out


def _match_labels(labels: Labels, node: Binary) -> Labels:
    if node.on:
        return keep_only(labels, node.matching)
    return drop_labels(labels, (*node.matching, METRIC_NAME))


def _result_metric(lhs: Labels, rhs: Labels, node: Binary, *, p3: bool) -> Labels:
    metric = lhs
    if drops_name(node.op, p3=p3):
        metric = drop_name(metric)
    if node.card == "one-to-one":
        keep = node.on
        metric = keep_only(metric, node.matching) if keep else drop_labels(metric, node.matching)
    for name in node.include:
        metric = set_label(metric, name, get_label(rhs, name))
    return metric
