"""The PromQL entry points: parse, plan, fetch once, evaluate every step, shape the result.

An instant query is a range query with one step. Evaluation is pure (``Evaluator``):
the fetched series are the only data, every node yields a value per step, and results
are bounded by ``QuerySettings`` (samples loaded, series returned) with a warning when a
response was cut.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from collectors._core.errors import BadQueryError, ConfigError
from collectors.promql import ast
from collectors.promql.columns import Block
from collectors.promql.evaluator import Evaluator
from collectors.promql.plan import QueryTimes, fetch, plan, without_stale
from collectors.promql.source import SeriesSource
from collectors.promql.values import (
    MatrixResult,
    QueryResult,
    RangeSteps,
    ScalarResult,
    ScalarSteps,
    SeriesPoints,
    StringResult,
    StringValue,
    Value,
    VectorResult,
    VectorSteps,
)

MAX_POINTS_PER_SERIES = 11_000
RESOLUTION_ERROR = (
    "exceeded maximum resolution of 11,000 points per timeseries. "
    "Try decreasing the query resolution (?step=XX)"
)


@dataclass(frozen=True, slots=True)
class QuerySettings:
    """Bounds and defaults of PromQL evaluation."""

    lookback_delta_ms: int = 300_000
    """How far back an instant selector looks for a sample (Prometheus: 5m)."""
    default_subquery_step_ms: int = 60_000
    """Subquery step when the query gives none (Prometheus: the evaluation interval, 1m)."""
    max_samples: int = 5_000_000
    """Samples one query may load; more is a 422 execution error, as in Prometheus."""
    max_series: int = 10_000
    """Series one response may carry; more are cut and a warning says so."""
    timeout_s: float = 120.0
    """Default evaluation deadline when the request gives no ``timeout``."""
    prometheus3: bool = False
    """Prometheus 3 semantics where they differ from 2.42 (the default): range selectors,
    the lookback and subquery grids are left-open ``(t - range, t]``, a regex's ``.``
    matches a newline, and ``atan2`` drops the metric name."""

    def validate(self) -> None:
        if self.lookback_delta_ms <= 0:
            raise ConfigError("query.lookback_delta_ms must be > 0")
        if self.default_subquery_step_ms <= 0:
            raise ConfigError("query.default_subquery_step_ms must be > 0")
        if self.max_samples <= 0 or self.max_series <= 0:
            raise ConfigError("query.max_samples and query.max_series must be > 0")
        if self.timeout_s <= 0:
            raise ConfigError("query.timeout_s must be > 0")


async def evaluate_instant(
    query: str,
    *,
    time_ms: int,
    source: SeriesSource,
    settings: QuerySettings,
    timeout_s: float | None = None,
) -> QueryResult:
    """Evaluate ``query`` at one instant (``/api/v1/query``)."""
    node = ast.parse(query, dotall=settings.prometheus3)
    value, _ = await _run(node, [time_ms], source, settings, timeout_s)
    warnings: list[str] = []
    if isinstance(value, ScalarSteps):
        return ScalarResult(time_ms, value.values[0])
    if isinstance(value, StringValue):
        return StringResult(time_ms, value.value)
    if isinstance(value, RangeSteps):
        series = _range_at(value, time_ms, left_open=settings.prometheus3)
        series = _cap(series, settings.max_series, warnings)
        return MatrixResult(series, tuple(warnings))
    samples = value.steps[0]
    if not _sorted_by_value(node):
        samples = sorted(samples, key=lambda s: s[0])
    if len(samples) > settings.max_series:
        warnings.append(_cut_warning(len(samples), settings.max_series))
        samples = samples[: settings.max_series]
    return VectorResult(time_ms, samples, tuple(warnings))


async def evaluate_range(
    query: str,
    *,
    start_ms: int,
    end_ms: int,
    step_ms: int,
    source: SeriesSource,
    settings: QuerySettings,
    timeout_s: float | None = None,
) -> MatrixResult:
    """Evaluate ``query`` at ``start, start+step, ... <= end`` (``/api/v1/query_range``)."""
    if step_ms <= 0:
        raise BadQueryError(
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
        )
    if end_ms < start_ms:
        raise BadQueryError("end timestamp must not be before start time")
    if (end_ms - start_ms) // step_ms > MAX_POINTS_PER_SERIES:
        raise BadQueryError(RESOLUTION_ERROR)
    node = ast.parse(query, dotall=settings.prometheus3)
    kind = ast.value_type(node)
    if kind not in ("scalar", "vector"):
        documented = "range vector" if kind == "matrix" else kind
        raise BadQueryError(
            f'invalid expression type "{documented}" for range query, '
            "must be Scalar or instant Vector"
        )
    steps = list(range(start_ms, end_ms + 1, step_ms))
    value, _ = await _run(node, steps, source, settings, timeout_s)
    warnings: list[str] = []
    if isinstance(value, ScalarSteps):
        series = [SeriesPoints((), list(steps), list(value.values))]
        return MatrixResult(series)
    assert isinstance(value, VectorSteps)
    if value.block is not None and len(set(value.block.labels)) == len(value.block.labels):
        series = _block_series(value.block, steps)
        series = _cap(series, settings.max_series, warnings)
        return MatrixResult(series, tuple(warnings))
    by_labels: dict[tuple[tuple[str, str], ...], SeriesPoints] = {}
    for t, vector in zip(steps, value.steps, strict=True):
        for labels, v in vector:
            s = by_labels.get(labels)
            if s is None:
                s = by_labels[labels] = SeriesPoints(labels, [], [])
            s.timestamps_ms.append(t)
            s.values.append(v)
    series = [by_labels[k] for k in sorted(by_labels)]
    series = _cap(series, settings.max_series, warnings)
    return MatrixResult(series, tuple(warnings))


async def _run(
    node: ast.Node,
    steps: list[int],
    source: SeriesSource,
    settings: QuerySettings,
    timeout_s: float | None,
) -> tuple[Value, Evaluator]:
    times = QueryTimes(
        steps[0],
        steps[-1],
        settings.lookback_delta_ms,
        settings.default_subquery_step_ms,
        settings.max_samples,
        settings.prometheus3,
    )
    selectors, windows = plan(node, steps[0], steps[-1], times)
    data = await fetch(
        source=source, selectors=selectors, windows=windows, max_samples=settings.max_samples
    )
    deadline = time.monotonic() + (timeout_s or settings.timeout_s)
    evaluator = Evaluator(steps=steps, data=data, times=times, deadline=deadline)
    return evaluator.eval(node), evaluator


def _block_series(block: Block, steps: list[int]) -> list[SeriesPoints]:
    """Output series of a columnar result whose rows have distinct labels, sorted."""
    times = np.asarray(steps, dtype=np.int64)
    out = [
        SeriesPoints(labels, times[mask].tolist(), block.values[r][mask].tolist())
        for r, (labels, mask) in enumerate(zip(block.labels, block.present, strict=True))
        if mask.any()
    ]
    out.sort(key=lambda s: s.labels)
    return out


def _range_at(value: RangeSteps, time_ms: int, *, left_open: bool) -> list[SeriesPoints]:
    """An instant query of a range selector: each series' points in the window."""
    ref = (value.at_ms if value.at_ms is not None else time_ms) - value.offset_ms
    start = ref - value.range_ms + (1 if left_open else 0)
    out = []
    for s in value.series:
        mask = (s.timestamps_ms >= start) & (s.timestamps_ms <= ref)
        if mask.any():
            out.append(
                SeriesPoints(s.labels, s.timestamps_ms[mask].tolist(), s.values[mask].tolist())
            )
    out.sort(key=lambda s: s.labels)
    return out


def _sorted_by_value(node: ast.Node) -> bool:
    """Whether the result keeps the engine's order: ``sort``, ``sort_desc``, and ``topk`` /
    ``bottomk`` (each group sorted by value, groups in first-seen order, as Prometheus)."""
    if isinstance(node, ast.Aggregate):
        return node.op in ("topk", "bottomk")
    return isinstance(node, ast.Call) and node.name in ("sort", "sort_desc")


def _cap(series: list[SeriesPoints], limit: int, warnings: list[str]) -> list[SeriesPoints]:
    if len(series) > limit:
        warnings.append(_cut_warning(len(series), limit))
        return series[:limit]
    return series


def _cut_warning(total: int, limit: int) -> str:
    return f"result truncated: {total} series matched, only the first {limit} are returned"


__all__ = [
    "MAX_POINTS_PER_SERIES",
    "RESOLUTION_ERROR",
    "QuerySettings",
    "evaluate_instant",
    "evaluate_range",
    "without_stale",
]
