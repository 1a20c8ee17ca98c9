"""Function-call dispatch: evaluates a call's arguments and applies the function per step.

Kept apart from the evaluator so each file stays about one thing: this one knows which
argument of which function is a scalar, a string or a range, and which functions are
special in Prometheus (``absent``, ``timestamp`` of a selector, ``scalar``, ``time``).
It reaches the evaluator only through ``CallContext``, the part of it a call needs, so the
evaluator depends on this module and not the other way round.
"""

from __future__ import annotations

import math
from typing import Protocol

from collectors.promql import functions, mathfuncs
from collectors.promql.ast import Call, Node, VectorSel
from collectors.promql.labels import Labels, Sample, drop_name
from collectors.promql.values import RangeSteps, ScalarSteps, Value, VectorSteps

NATIVE_HISTOGRAM_FUNCTIONS = frozenset({"histogram_count", "histogram_sum", "histogram_fraction"})
"""They read native histogram samples only; the store holds floats, so they yield nothing
(2.42 skips every float sample)."""


class CallContext(Protocol):
    """What a function call needs from the evaluator evaluating it (``Evaluator``)."""

    @property
    def steps(self) -> list[int]:
        """Evaluation times in ms, ascending."""
        ...

    @property
    def prometheus3(self) -> bool:
        """Whether the query runs with Prometheus 3 semantics (``QuerySettings``)."""
        ...

    def eval(self, node: Node) -> Value:
        """One value per step of ``node``."""
        ...

    def vector(self, node: Node) -> list[list[Sample]]: ...

    def scalar(self, node: Node) -> list[float]: ...

    def string(self, node: Node) -> str: ...

    def instant_timestamps(self, sel: VectorSel) -> list[list[Sample]]:
        """``timestamp(selector)``: the selected samples' own times, in seconds."""
        ...

    def range_function(self, name: str, arg: RangeSteps, params: list[list[float]]) -> VectorSteps:
        """Apply range function ``name`` to every series of ``arg`` at every step, with
        ``params`` (one list of per-step values per scalar argument)."""
        ...

    def present_steps(self, arg: RangeSteps) -> list[bool]:
        """Whether any series of ``arg`` has a sample in each step's window."""
        ...

    def absent_labels(self, arg: Node) -> Labels:
        """The labels ``absent(arg)`` reports."""
        ...

    def check_unique(self, steps: list[list[Sample]]) -> None:
        """Raise ``QueryExecutionError`` when a step holds one label set twice."""
        ...


def call(ev: CallContext, node: Call) -> Value:
    name, args = node.name, node.args
    n = len(ev.steps)
    if name == "time":
        return ScalarSteps([t / 1000 for t in ev.steps])
    if name == "vector":
        return VectorSteps([[((), v)] for v in ev.scalar(args[0])])
    if name == "scalar":
        return ScalarSteps(
            [step[0][1] if len(step) == 1 else math.nan for step in ev.vector(args[0])]
        )
    if name in ("absent", "absent_over_time"):
        return _absent(ev, node)
    if name == "timestamp":
        if isinstance(args[0], VectorSel):
            return VectorSteps(ev.instant_timestamps(args[0]))
        steps = ev.vector(args[0])
        return VectorSteps(
            [
                [(drop_name(labels), t / 1000) for labels, _ in step]
                for step, t in zip(steps, ev.steps, strict=True)
            ]
        )
    if name in NATIVE_HISTOGRAM_FUNCTIONS:
        ev.eval(args[-1])
        return VectorSteps([[] for _ in range(n)])
    if name == "pi":
        return ScalarSteps([math.pi] * n)
    if name in mathfuncs.DATE and not args:
        return VectorSteps([mathfuncs.date_now(name, t) for t in ev.steps])
    if name in ("sort", "sort_desc"):
        return VectorSteps([_sort(step, desc=name == "sort_desc") for step in ev.vector(args[0])])
    first = ev.eval(args[0])
    if isinstance(first, RangeSteps):
        return ev.range_function(name, first, [ev.scalar(a) for a in args[1:]])
    if name == "quantile_over_time":
        phis = ev.scalar(args[0])
        arg = ev.eval(args[1])
        assert isinstance(arg, RangeSteps)
        return ev.range_function(name, arg, [phis])
    if name == "histogram_quantile":
        phis = first.values if isinstance(first, ScalarSteps) else [math.nan] * n
        vectors = ev.vector(args[1])
        return _checked(
            ev, [functions.histogram_quantile(q, v) for q, v in zip(phis, vectors, strict=True)]
        )
    assert isinstance(first, VectorSteps)
    vectors = first.steps
    if name in functions.SIMPLE:
        return _checked(ev, [functions.simple(name, v) for v in vectors])
    if name in mathfuncs.TRIG:
        return _checked(ev, [mathfuncs.trig(name, v) for v in vectors])
    if name in mathfuncs.DATE:
        return _checked(ev, [mathfuncs.date(name, v) for v in vectors])
    if name == "round":
        to = ev.scalar(args[1]) if len(args) > 1 else [1.0] * n
        return _checked(ev, [functions.round_to(v, x) for v, x in zip(vectors, to, strict=True)])
    if name == "clamp":
        lows, highs = ev.scalar(args[1]), ev.scalar(args[2])
        return _checked(
            ev,
            [functions.clamp(v, lo, hi) for v, lo, hi in zip(vectors, lows, highs, strict=True)],
        )
    if name == "clamp_min":
        lows = ev.scalar(args[1])
        return _checked(ev, [functions.clamp_min(v, x) for v, x in zip(vectors, lows, strict=True)])
    if name == "clamp_max":
        highs = ev.scalar(args[1])
        return _checked(
            ev, [functions.clamp_max(v, x) for v, x in zip(vectors, highs, strict=True)]
        )
    if name == "label_replace":
        strings = [ev.string(a) for a in args[1:5]]
        replacement = functions.Replacement.build(*strings, dotall=ev.prometheus3)
        return _checked(ev, [functions.label_replace(v, replacement) for v in vectors])
    if name == "label_join":
        dst, sep, *srcs = [ev.string(a) for a in args[1:]]
        return _checked(ev, [functions.label_join(v, dst, sep, srcs) for v in vectors])
    raise AssertionError(f"function {name} passed the parser's check but has no implementation")


def _checked(ev: CallContext, steps: list[list[Sample]]) -> VectorSteps:
    ev.check_unique(steps)
    return VectorSteps(steps)


def _absent(ev: CallContext, node: Call) -> VectorSteps:
    arg: Node = node.args[0]
    labels = ev.absent_labels(arg)
    value = ev.eval(arg)
    if isinstance(value, RangeSteps):
        present = ev.present_steps(value)
    else:
        assert isinstance(value, VectorSteps)
        present = [bool(step) for step in value.steps]
    return VectorSteps([[] if p else [(labels, 1.0)] for p in present])


def _sort(vector: list[Sample], *, desc: bool) -> list[Sample]:
    numbers = [s for s in vector if not math.isnan(s[1])]
    nans = [s for s in vector if math.isnan(s[1])]
    return sorted(numbers, key=lambda s: s[1], reverse=desc) + nans
