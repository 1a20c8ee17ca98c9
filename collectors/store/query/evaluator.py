"""Pure evaluation of the engine's tree over fetched series, one value per step per node.

No I/O happens here: ``data`` holds every selector's series (fetched once by the
planner). Instant selectors pick the newest sample in ``[t - lookback, t]`` unless it is a
stale marker; range selectors cut ``[t - range, t]`` out of the sorted arrays by binary
search; subqueries evaluate their expression on their own aligned grid.
"""

from __future__ import annotations

import time
from bisect import bisect_left, bisect_right

from collectors.store.query import aggregations, binary
from collectors.store.query.ast import (
    Aggregate,
    Binary,
    Call,
    MatrixSel,
    Negate,
    Node,
    NumberLit,
    StringLit,
    Subquery,
    VectorSel,
)
from collectors.store.query.calls import call
from collectors.store.query.errors import QueryExecutionError, QueryTimeoutError
from collectors.store.query.plan import Fetched, QueryTimes, subquery_grid, without_stale
from collectors.store.query.rangefuncs import RANGE_FUNCTIONS, Window
from collectors.store.query.values import (
    METRIC_NAME,
    Labels,
    RangeSteps,
    Sample,
    ScalarSteps,
    SeriesPoints,
    StringValue,
    Value,
    VectorSteps,
    drop_name,
    has_duplicates,
    is_stale,
)
from collectors.store.series import MatchType

DUPLICATE_LABELSET = "vector cannot contain metrics with the same labelset"


class Evaluator:
    """Evaluates nodes at ``steps`` (ms, ascending) over ``data`` (selector id -> series)."""

    def __init__(
        self,
        *,
        steps: list[int],
        data: dict[int, list[Fetched]],
        times: QueryTimes,
        deadline: float,
    ) -> None:
        self.steps = steps
        self.data = data
        self.times = times
        self.deadline = deadline

    def eval(self, node: Node) -> Value:
        if time.monotonic() > self.deadline:
            raise QueryTimeoutError("query timed out in expression evaluation")
        if isinstance(node, NumberLit):
            return ScalarSteps([node.value] * len(self.steps))
        if isinstance(node, StringLit):
            return StringValue(node.value)
        if isinstance(node, VectorSel):
            return VectorSteps(self._instant(node))
        if isinstance(node, MatrixSel):
            return self._range(node)
        if isinstance(node, Subquery):
            return self._subquery(node)
        if isinstance(node, Negate):
            return self._negate(node)
        if isinstance(node, Call):
            return call(self, node)
        if isinstance(node, Aggregate):
            return self._aggregate(node)
        return self._binary(node)

    def vector(self, node: Node) -> list[list[Sample]]:
        value = self.eval(node)
        assert isinstance(value, VectorSteps)
        return value.steps

    def scalar(self, node: Node) -> list[float]:
        value = self.eval(node)
        assert isinstance(value, ScalarSteps)
        return value.values

    def string(self, node: Node) -> str:
        value = self.eval(node)
        assert isinstance(value, StringValue)
        return value.value

    def refs(self, offset_ms: int, at_ms: int | None) -> list[int]:
        if at_ms is not None:
            return [at_ms - offset_ms] * len(self.steps)
        return [t - offset_ms for t in self.steps]

    def _instant(self, sel: VectorSel, *, with_time: bool = False) -> list[list[Sample]]:
        at_ms = None if sel.at is None else self.times.resolve(sel.at)
        refs = self.refs(sel.offset_ms, at_ms)
        lookback = self.times.lookback_ms
        out: list[list[Sample]] = [[] for _ in self.steps]
        for series in self.data.get(sel.id, []):
            ts, vs = series.timestamps_ms, series.values
            if not ts:
                continue
            for i, ref in enumerate(refs):
                j = bisect_right(ts, ref) - 1
                if j < 0 or ts[j] < ref - lookback:
                    continue
                v = vs[j]
                if is_stale(v):
                    continue
                out[i].append((series.labels, ts[j] / 1000 if with_time else v))
        return out

    def instant_timestamps(self, sel: VectorSel) -> list[list[Sample]]:
        """``timestamp(selector)``: the selected samples' own times, in seconds."""
        steps = self._instant(sel, with_time=True)
        return [[(drop_name(labels), v) for labels, v in step] for step in steps]

    def _range(self, node: MatrixSel) -> RangeSteps:
        sel = node.selector
        at_ms = None if sel.at is None else self.times.resolve(sel.at)
        series = []
        for f in self.data.get(sel.id, []):
            ts, vs = without_stale(f)
            series.append(SeriesPoints(f.labels, ts, vs))
        return RangeSteps(series, node.range_ms, sel.offset_ms, at_ms)

    def _subquery(self, node: Subquery) -> RangeSteps:
        at_ms = None if node.at is None else self.times.resolve(node.at)
        lo, hi = (self.steps[0], self.steps[-1]) if at_ms is None else (at_ms, at_ms)
        step = node.step_ms or self.times.default_step_ms
        grid = subquery_grid(lo, hi, node.range_ms, node.offset_ms, step)
        if not grid:
            return RangeSteps([], node.range_ms, node.offset_ms, at_ms)
        inner = Evaluator(steps=grid, data=self.data, times=self.times, deadline=self.deadline)
        value = inner.eval(node.expr)
        by_labels: dict[Labels, SeriesPoints] = {}
        if isinstance(value, ScalarSteps):
            by_labels[()] = SeriesPoints((), list(grid), list(value.values))
        else:
            assert isinstance(value, VectorSteps)
            for t, vector in zip(grid, value.steps, strict=True):
                for labels, v in vector:
                    s = by_labels.get(labels)
                    if s is None:
                        s = by_labels[labels] = SeriesPoints(labels, [], [])
                    s.timestamps_ms.append(t)
                    s.values.append(v)
        series = [by_labels[k] for k in sorted(by_labels)]
        return RangeSteps(series, node.range_ms, node.offset_ms, at_ms)

    def range_function(self, name: str, arg: RangeSteps, params: list[float]) -> VectorSteps:
        """Apply a range function to every series at every step."""
        fn = RANGE_FUNCTIONS[name]
        refs = self.refs(arg.offset_ms, arg.at_ms)
        keep_name = name == "last_over_time"
        out: list[list[Sample]] = [[] for _ in self.steps]
        for s in arg.series:
            ts, vs = s.timestamps_ms, s.values
            if not ts:
                continue
            labels = s.labels if keep_name else drop_name(s.labels)
            for i, ref in enumerate(refs):
                start = ref - arg.range_ms
                lo = bisect_left(ts, start)
                hi = bisect_right(ts, ref, lo)
                if hi <= lo:
                    continue
                param = params[i] if params else 0.0
                v = fn(Window(ts, vs, lo, hi, start, ref, arg.range_ms, param))
                if v is not None:
                    out[i].append((labels, v))
        self.check_unique(out)
        return VectorSteps(out)

    def present_steps(self, arg: RangeSteps) -> list[bool]:
        """For ``absent_over_time``: whether any series has a sample in the step's window."""
        refs = self.refs(arg.offset_ms, arg.at_ms)
        present = [False] * len(self.steps)
        for s in arg.series:
            for i, ref in enumerate(refs):
                if not present[i]:
                    lo = bisect_left(s.timestamps_ms, ref - arg.range_ms)
                    present[i] = lo < len(s.timestamps_ms) and s.timestamps_ms[lo] <= ref
        return present

    @staticmethod
    def check_unique(steps: list[list[Sample]]) -> None:
        for vector in steps:
            if len(vector) > 1 and has_duplicates(vector):
                raise QueryExecutionError(DUPLICATE_LABELSET)

    def _negate(self, node: Negate) -> Value:
        value = self.eval(node.expr)
        if isinstance(value, ScalarSteps):
            return ScalarSteps([-v for v in value.values])
        assert isinstance(value, VectorSteps)
        steps = [[(drop_name(labels), -v) for labels, v in step] for step in value.steps]
        self.check_unique(steps)
        return VectorSteps(steps)

    def _aggregate(self, node: Aggregate) -> VectorSteps:
        params: list[float | str | None] = [None] * len(self.steps)
        if node.param is not None:
            pv = self.eval(node.param)
            if isinstance(pv, StringValue):
                if not _valid_label_name(pv.value):
                    raise QueryExecutionError(f'invalid label name "{pv.value}"')
                params = [pv.value] * len(self.steps)
            elif isinstance(pv, ScalarSteps):
                params = list(pv.values)
        vectors = self.vector(node.expr)
        out = [
            aggregations.aggregate(
                node.op, vector, without=node.without, grouping=node.grouping, param=param
            )
            for vector, param in zip(vectors, params, strict=True)
        ]
        return VectorSteps(out)

    def _binary(self, node: Binary) -> Value:
        lhs, rhs = self.eval(node.lhs), self.eval(node.rhs)
        if isinstance(lhs, ScalarSteps) and isinstance(rhs, ScalarSteps):
            return ScalarSteps(
                [
                    binary.scalar_scalar(node.op, a, b)
                    for a, b in zip(lhs.values, rhs.values, strict=True)
                ]
            )
        if isinstance(lhs, VectorSteps) and isinstance(rhs, ScalarSteps):
            steps = [
                binary.vector_scalar(node.op, v, s, swap=False, return_bool=node.return_bool)
                for v, s in zip(lhs.steps, rhs.values, strict=True)
            ]
        elif isinstance(lhs, ScalarSteps) and isinstance(rhs, VectorSteps):
            steps = [
                binary.vector_scalar(node.op, v, s, swap=True, return_bool=node.return_bool)
                for v, s in zip(rhs.steps, lhs.values, strict=True)
            ]
        else:
            assert isinstance(lhs, VectorSteps) and isinstance(rhs, VectorSteps)
            steps = [
                binary.vector_vector(node, a, b) for a, b in zip(lhs.steps, rhs.steps, strict=True)
            ]
        self.check_unique(steps)
        return VectorSteps(steps)

    def absent_labels(self, arg: Node) -> Labels:
        """Labels ``absent()`` reports: the selector's equality matchers, unless repeated."""
        sel = arg.selector if isinstance(arg, MatrixSel) else arg
        if not isinstance(sel, VectorSel):
            return ()
        found: dict[str, str] = {}
        dropped: set[str] = set()
        for m in sel.matchers:
            if m.name == METRIC_NAME:
                continue
            if m.type is MatchType.EQUAL and m.name not in found:
                found[m.name] = m.value
            else:
                dropped.add(m.name)
        return tuple(sorted((k, v) for k, v in found.items() if k not in dropped and v != ""))


def _valid_label_name(name: str) -> bool:
    return (
        bool(name)
        and (name[0].isalpha() or name[0] == "_")
        and all(c.isascii() and (c.isalnum() or c == "_") for c in name)
        and not name[0].isdigit()
    )
