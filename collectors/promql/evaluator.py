"""Pure evaluation of the engine's tree over fetched series, one value per step per node.

No I/O happens here: ``data`` holds every selector's series (fetched once by the
planner). Instant selectors pick the newest sample in ``[t - lookback, t]`` unless it is a
stale marker; range selectors cut ``[t - range, t]`` out of the sorted arrays by binary
search; subqueries evaluate their expression on their own aligned grid. Selectors, range
functions, negation and the common aggregations work on ``Block``s (all steps at once,
see ``columns``); the other nodes read per-step sample lists.
"""

from __future__ import annotations

import time

import numpy as np

from collectors._core.errors import QueryExecutionError, QueryTimeoutError
from collectors.promql import aggregations, binary, rangevec, rangewindow
from collectors.promql.ast import (
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
from collectors.promql.calls import call
from collectors.promql.columns import (
    Block,
    IntArray,
    RangeSeries,
    block_from_steps,
    stale_mask,
    windows,
)
from collectors.promql.labels import METRIC_NAME, Labels, Sample, drop_name, has_duplicates
from collectors.promql.plan import Fetched, QueryTimes, subquery_grid, without_stale
from collectors.promql.source import MatchType
from collectors.promql.values import RangeSteps, ScalarSteps, StringValue, Value, VectorSteps

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
            return VectorSteps(block=self._instant(node))
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

    @property
    def prometheus3(self) -> bool:
        return self.times.prometheus3

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

    def refs(self, offset_ms: int, at_ms: int | None) -> IntArray:
        if at_ms is not None:
            return np.full(len(self.steps), at_ms - offset_ms, dtype=np.int64)
        return np.asarray(self.steps, dtype=np.int64) - offset_ms

    def _instant(self, sel: VectorSel, *, with_time: bool = False) -> Block:
        """The newest sample in ``[ref - lookback, ref]`` per series and step, unless it is
        a stale marker: the last sample of a lookback-long window."""
        at_ms = None if sel.at is None else self.times.resolve(sel.at)
        refs = self.refs(sel.offset_ms, at_ms)
        data = self.data.get(sel.id, [])
        series = [RangeSeries(f.labels, f.timestamps_ms, f.values) for f in data]
        w = windows(series, refs, self.times.lookback_ms, left_open=self.times.prometheus3)
        present = w.counts >= 1
        if not len(w.ts):
            return Block([f.labels for f in data], np.zeros(present.shape), present)
        last = np.clip(w.hi - 1, 0, None)
        values = w.vs[last]
        present &= ~stale_mask(values)
        if with_time:
            return Block([drop_name(f.labels) for f in data], w.ts[last] / 1000, present)
        return Block([f.labels for f in data], values, present)

    def instant_timestamps(self, sel: VectorSel) -> list[list[Sample]]:
        """``timestamp(selector)``: the selected samples' own times, in seconds."""
        return self._instant(sel, with_time=True).to_steps()

    def _range(self, node: MatrixSel) -> RangeSteps:
        sel = node.selector
        at_ms = None if sel.at is None else self.times.resolve(sel.at)
        series = []
        for f in self.data.get(sel.id, []):
            ts, vs = without_stale(f)
            series.append(RangeSeries(f.labels, ts, vs))
        return RangeSteps(series, node.range_ms, sel.offset_ms, at_ms)

    def _subquery(self, node: Subquery) -> RangeSteps:
        at_ms = None if node.at is None else self.times.resolve(node.at)
        lo, hi = (self.steps[0], self.steps[-1]) if at_ms is None else (at_ms, at_ms)
        step = node.step_ms or self.times.default_step_ms
        grid = subquery_grid(lo, hi, node.range_ms, node.offset_ms, step, self.times)
        if not grid:
            return RangeSteps([], node.range_ms, node.offset_ms, at_ms)
        inner = Evaluator(steps=grid, data=self.data, times=self.times, deadline=self.deadline)
        value = inner.eval(node.expr)
        times = np.asarray(grid, dtype=np.int64)
        if isinstance(value, ScalarSteps):
            values = np.asarray(value.values, dtype=np.float64)
            return RangeSteps(
                [RangeSeries((), times, values)], node.range_ms, node.offset_ms, at_ms
            )
        assert isinstance(value, VectorSteps)
        block = value.block
        if block is None or len(set(block.labels)) != len(block.labels):
            block = block_from_steps(value.steps)
        series = [
            RangeSeries(labels, times[block.present[r]], block.values[r][block.present[r]])
            for r, labels in enumerate(block.labels)
            if block.present[r].any()
        ]
        series.sort(key=lambda s: s.labels)
        return RangeSteps(series, node.range_ms, node.offset_ms, at_ms)

    def range_function(self, name: str, arg: RangeSteps, params: list[list[float]]) -> VectorSteps:
        """Apply a range function to every series at every step (see ``rangevec``, and
        ``rangewindow`` for the rare ones); ``params`` holds a scalar argument per step."""
        refs = self.refs(arg.offset_ms, arg.at_ms)
        keep_name = name == "last_over_time"
        w = windows(arg.series, refs, arg.range_ms, left_open=self.times.prometheus3)
        rows = np.asarray(params, dtype=np.float64).reshape(len(params), len(self.steps))
        if name in rangewindow.WINDOW_FUNCTIONS:
            values, present = rangewindow.apply_windowed(name, w, rows, self.steps)
        else:
            phis = rows[0] if len(rows) else np.zeros(len(self.steps))
            values, present = rangevec.apply(name, w, phis)
        labels = [s.labels if keep_name else drop_name(s.labels) for s in arg.series]
        block = Block(labels, values, present)
        self.check_block(block)
        return VectorSteps(block=block)

    def present_steps(self, arg: RangeSteps) -> list[bool]:
        """For ``absent_over_time``: whether any series has a sample in the step's window."""
        refs = self.refs(arg.offset_ms, arg.at_ms)
        w = windows(arg.series, refs, arg.range_ms, left_open=self.times.prometheus3)
        present = np.asarray((w.counts >= 1).any(axis=0), dtype=np.bool_)
        return [bool(p) for p in present]

    @staticmethod
    def check_unique(steps: list[list[Sample]]) -> None:
        for vector in steps:
            if len(vector) > 1 and has_duplicates(vector):
                raise QueryExecutionError(DUPLICATE_LABELSET)

    @staticmethod
    def check_block(block: Block) -> None:
        if block.has_duplicate_cells():
            raise QueryExecutionError(DUPLICATE_LABELSET)

    def _negate(self, node: Negate) -> Value:
        value = self.eval(node.expr)
        if isinstance(value, ScalarSteps):
            return ScalarSteps([-v for v in value.values])
        assert isinstance(value, VectorSteps)
        if value.block is not None:
            b = value.block
            block = Block([drop_name(labels) for labels in b.labels], -b.values, b.present)
            self.check_block(block)
            return VectorSteps(block=block)
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
        value = self.eval(node.expr)
        assert isinstance(value, VectorSteps)
        if value.block is not None and node.param is None and node.op in aggregations.BLOCK_OPS:
            return VectorSteps(
                block=aggregations.aggregate_block(
                    node.op, value.block, without=node.without, grouping=node.grouping
                )
            )
        vectors = value.steps
        out = [
            aggregations.aggregate(
                node.op, vector, without=node.without, grouping=node.grouping, param=param
            )
            for vector, param in zip(vectors, params, strict=True)
        ]
        return VectorSteps(out)

    def _binary(self, node: Binary) -> Value:
        lhs, rhs = self.eval(node.lhs), self.eval(node.rhs)
        p3 = self.times.prometheus3
        if isinstance(lhs, ScalarSteps) and isinstance(rhs, ScalarSteps):
            return ScalarSteps(
                [
                    binary.scalar_scalar(node.op, a, b)
                    for a, b in zip(lhs.values, rhs.values, strict=True)
                ]
            )
        if isinstance(lhs, VectorSteps) and isinstance(rhs, ScalarSteps):
            steps = [
                binary.vector_scalar(node.op, v, s, swap=False, return_bool=node.return_bool, p3=p3)
                for v, s in zip(lhs.steps, rhs.values, strict=True)
            ]
        elif isinstance(lhs, ScalarSteps) and isinstance(rhs, VectorSteps):
            steps = [
                binary.vector_scalar(node.op, v, s, swap=True, return_bool=node.return_bool, p3=p3)
                for v, s in zip(rhs.steps, lhs.values, strict=True)
            ]
        else:
            assert isinstance(lhs, VectorSteps) and isinstance(rhs, VectorSteps)
            steps = [
                binary.vector_vector(node, a, b, p3=p3)
                for a, b in zip(lhs.steps, rhs.steps, strict=True)
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
