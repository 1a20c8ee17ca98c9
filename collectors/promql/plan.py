"""Plan and fetch: which samples each selector needs, read once per selector.

Walking the tree with the span of evaluation times every node sees (shifted by offsets,
pinned by ``@``, widened by ranges, subqueries and the lookback delta) gives each
selector one time window. Fetching it is the engine's only I/O; the evaluator then cuts
per-step windows out of the fetched arrays with binary search.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from collectors._core.errors import QueryExecutionError
from collectors.promql.ast import (
    Aggregate,
    At,
    Binary,
    Call,
    MatrixSel,
    Negate,
    Node,
    Subquery,
    VectorSel,
)
from collectors.promql.columns import FloatArray, IntArray, stale_mask
from collectors.promql.labels import Labels, labels_from
from collectors.promql.source import SeriesSource

TOO_MANY_SAMPLES = "query processing would load too many samples into memory in query execution"


@dataclass(frozen=True, slots=True)
class Fetched:
    """One fetched series: sorted labels and parallel time/value arrays (stale kept)."""

    labels: Labels
    timestamps_ms: IntArray
    values: FloatArray


@dataclass(frozen=True, slots=True)
class QueryTimes:
    """What start()/end() mean, the lookback delta and the default subquery step."""

    start_ms: int
    end_ms: int
    lookback_ms: int
    default_step_ms: int
    max_steps: int = 5_000_000
    """Most evaluation times a subquery may have (the query's ``max_samples``)."""
    prometheus3: bool = False
    """Prometheus 3 semantics: ranges ``(t - range, t]`` instead of 2.x's ``[t - range, t]``
    (and, for the evaluator, ``atan2`` dropping the name, ``.`` matching a newline)."""

    def resolve(self, at: At) -> int:
        if at.kind == "start":
            return self.start_ms
        if at.kind == "end":
            return self.end_ms
        return at.ms


def subquery_grid(  # noqa: PLR0917
    lo: int, hi: int, range_ms: int, offset_ms: int, step_ms: int, times: QueryTimes
) -> list[int]:
    """Evaluation times of a subquery evaluated for outer times ``[lo, hi]``.

    Aligned to multiples of the step and starting at the first one at or after
    ``lo - offset - range`` (after it when ranges are left-open), as Prometheus does. More
    than ``times.max_steps`` times is refused as too many samples (a ``[100y:1s]``
    subquery would otherwise exhaust memory).
    """
    first = lo - offset_ms - range_ms
    start = step_ms * (first // step_ms)
    if start < first or (times.prometheus3 and start == first):
        start += step_ms
    end = hi - offset_ms
    if end >= start and (end - start) // step_ms >= times.max_steps:
        raise QueryExecutionError(TOO_MANY_SAMPLES)
    return list(range(start, end + 1, step_ms))


def plan(
    node: Node, lo: int, hi: int, times: QueryTimes
) -> tuple[dict[int, VectorSel], dict[int, tuple[int, int]]]:
    """Every selector of ``node`` by id, and the inclusive window each must be fetched for.

    ``[lo, hi]`` is the span of the query's evaluation times.
    """
    found: dict[int, VectorSel] = {}
    windows: dict[int, tuple[int, int]] = {}
    _walk(node, lo, hi, times, found, windows)
    return found, windows


def _walk(  # noqa: PLR0917
    node: Node,
    lo: int,
    hi: int,
    times: QueryTimes,
    found: dict[int, VectorSel],
    windows: dict[int, tuple[int, int]],
) -> None:
    if isinstance(node, VectorSel | MatrixSel):
        sel = node if isinstance(node, VectorSel) else node.selector
        widen = times.lookback_ms if isinstance(node, VectorSel) else node.range_ms
        ref_lo, ref_hi = _refs(lo, hi, sel.offset_ms, sel.at, times)
        window = (ref_lo - widen, ref_hi)
        found[sel.id] = sel
        old = windows.get(sel.id)
        windows[sel.id] = (
            window if old is None else (min(old[0], window[0]), max(old[1], window[1]))
        )
    elif isinstance(node, Subquery):
        base_lo, base_hi = (lo, hi) if node.at is None else (times.resolve(node.at),) * 2
        step = node.step_ms or times.default_step_ms
        grid = subquery_grid(base_lo, base_hi, node.range_ms, node.offset_ms, step, times)
        if grid:
            _walk(node.expr, grid[0], grid[-1], times, found, windows)
    elif isinstance(node, Call):
        for arg in node.args:
            _walk(arg, lo, hi, times, found, windows)
    elif isinstance(node, Aggregate):
        if node.param is not None:
            _walk(node.param, lo, hi, times, found, windows)
        _walk(node.expr, lo, hi, times, found, windows)
    elif isinstance(node, Binary):
        _walk(node.lhs, lo, hi, times, found, windows)
        _walk(node.rhs, lo, hi, times, found, windows)
    elif isinstance(node, Negate):
        _walk(node.expr, lo, hi, times, found, windows)


def _refs(lo: int, hi: int, offset_ms: int, at: At | None, times: QueryTimes) -> tuple[int, int]:
    if at is not None:
        pinned = times.resolve(at) - offset_ms
        return pinned, pinned
    return lo - offset_ms, hi - offset_ms


async def fetch(
    *,
    source: SeriesSource,
    selectors: dict[int, VectorSel],
    windows: dict[int, tuple[int, int]],
    max_samples: int,
) -> dict[int, list[Fetched]]:
    """Read every selector's window concurrently; series come back sorted by labels."""
    ids = sorted(windows)
    answers = await asyncio.gather(
        *(source.select(selectors[i].matchers, windows[i][0], windows[i][1]) for i in ids)
    )
    total = 0
    out: dict[int, list[Fetched]] = {}
    for sel_id, series in zip(ids, answers, strict=True):
        fetched = []
        for s in series:
            total += len(s.values)
            if total > max_samples:
                raise QueryExecutionError(TOO_MANY_SAMPLES)
            fetched.append(
                Fetched(
                    labels_from(s.labels),
                    _column(s.timestamps_ms, "q", np.int64),
                    _column(s.values, "d", np.float64),
                )
            )
        fetched.sort(key=lambda f: f.labels)
        out[sel_id] = fetched
    return out


def _column(
    seq: Sequence[int] | Sequence[float], code: str, dtype: type[np.int64] | type[np.float64]
) -> np.ndarray:
    """A numpy view of an ``array`` of the right type (no copy), else a converted copy."""
    if isinstance(seq, array) and seq.typecode == code:
        return np.frombuffer(seq, dtype=dtype)
    return np.asarray(seq, dtype=dtype)


def without_stale(series: Fetched) -> tuple[IntArray, FloatArray]:
    """Points of a range selection: Prometheus drops stale markers from ranges."""
    stale = stale_mask(series.values)
    if not stale.any():
        return series.timestamps_ms, series.values
    return series.timestamps_ms[~stale], series.values[~stale]
