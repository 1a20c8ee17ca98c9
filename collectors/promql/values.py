"""Values the engine passes between nodes and hands back to the API.

Inside the evaluator everything is per evaluation step: an instant vector is one list of
``(labels, value)`` per step (or a columnar ``Block``), a scalar one float per step. Label
sets are ``labels.Labels``. Results leave the engine as the four Prometheus result types.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from decimal import Decimal

from collectors.promql.columns import Block, RangeSeries
from collectors.promql.labels import Labels, Sample

STALE_NAN_BITS = 0x7FF0000000000002


def is_stale(value: float) -> bool:
    """Whether ``value`` is Prometheus's stale marker (a NaN with a specific bit pattern)."""
    return math.isnan(value) and struct.unpack("<Q", struct.pack("<d", value))[0] == STALE_NAN_BITS


@dataclass(frozen=True, slots=True)
class SeriesPoints:
    """One output series of a matrix: labels and points sorted by time."""

    labels: Labels
    timestamps_ms: list[int]
    values: list[float]


@dataclass(frozen=True, slots=True)
class VectorResult:
    """An instant vector at ``timestamp_ms``."""

    timestamp_ms: int
    samples: list[Sample]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MatrixResult:
    """A range query's result, or an instant query of a range selector."""

    series: list[SeriesPoints]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ScalarResult:
    timestamp_ms: int
    value: float
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StringResult:
    timestamp_ms: int
    value: str
    warnings: tuple[str, ...] = ()


QueryResult = VectorResult | MatrixResult | ScalarResult | StringResult


@dataclass(slots=True)
class ScalarSteps:
    """A scalar per evaluation step."""

    values: list[float]


class VectorSteps:
    """An instant vector per evaluation step: per-step sample lists, or a ``Block`` (the
    columnar form) from which the lists are built the first time they are asked for."""

    __slots__ = ("_steps", "block")

    def __init__(
        self, steps: list[list[Sample]] | None = None, *, block: Block | None = None
    ) -> None:
        if steps is None and block is None:
            raise ValueError("VectorSteps needs steps or a block")
        self._steps = steps
        self.block = block

    @property
    def steps(self) -> list[list[Sample]]:
        if self._steps is None:
            assert self.block is not None
            self._steps = self.block.to_steps()
        return self._steps


@dataclass(slots=True)
class StringValue:
    value: str


@dataclass(slots=True)
class RangeSteps:
    """A range vector: series with all their points, and how to cut a window per step.

    At step ``t`` the window is ``[ref - range_ms, ref]`` with ``ref = (at_ms or t) -
    offset_ms``: both ends included, as in Prometheus 2.x. Stale markers are already gone.
    """

    series: list[RangeSeries]
    range_ms: int
    offset_ms: int
    at_ms: int | None


Value = ScalarSteps | VectorSteps | StringValue | RangeSteps


def format_float(value: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'f', -1, 64)`` with Prometheus's NaN/+Inf/-Inf."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e16:
        text = str(int(value))
        return "-0" if text == "0" and math.copysign(1.0, value) < 0 else text
    text = float.__repr__(value)  # a numpy float64's repr() names its type
    if "e" not in text:
        return text  # the shortest round-trip digits, already without an exponent
    text = format(Decimal(text), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
