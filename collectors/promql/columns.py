"""Columnar values: an instant vector at every step as one matrix, a range as numpy arrays.

Why: a range query evaluates the same node at hundreds of steps over thousands of series.
Held as a ``Block`` (one row per series, one column per step, a value and a presence
flag per cell) selectors, range functions and the common aggregations run as a handful
of numpy operations instead of a Python loop per series per step. Nodes that have no
columnar implementation read the per-step lists, which a ``Block`` builds on demand in
the same order (rows in series order), so both paths see the same vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from collectors.promql.labels import Labels, Sample

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

STALE_NAN_BITS = np.uint64(0x7FF0000000000002)


def stale_mask(values: FloatArray) -> BoolArray:
    """Which values are Prometheus's stale marker (that exact NaN bit pattern)."""
    stale: BoolArray = values.view(np.uint64) == STALE_NAN_BITS
    return stale


@dataclass(frozen=True, slots=True)
class Block:
    """Row ``r`` is the series ``labels[r]``; cell ``[r, i]`` its value at step ``i``, if
    ``present[r, i]``. Rows are in the order the per-step vectors list their samples."""

    labels: list[Labels]
    values: FloatArray
    present: BoolArray

    @classmethod
    def empty(cls, steps: int) -> Block:
        return cls([], np.zeros((0, steps)), np.zeros((0, steps), dtype=np.bool_))

    def to_steps(self) -> list[list[Sample]]:
        """The per-step sample lists (rows in order, absent cells left out)."""
        steps = self.values.shape[1]
        out: list[list[Sample]] = [[] for _ in range(steps)]
        labels = self.labels
        steps_i, rows_i = np.nonzero(self.present.T)  # step by step, rows in order
        values = self.values.T[steps_i, rows_i].tolist()
        for step, row, value in zip(steps_i.tolist(), rows_i.tolist(), values, strict=True):
            out[step].append((labels[row], value))
        return out

    def has_duplicate_cells(self) -> bool:
        """Whether some step holds two samples with the same labels."""
        if len(set(self.labels)) == len(self.labels):
            return False
        rows_of: dict[Labels, list[int]] = {}
        for r, labels in enumerate(self.labels):
            rows_of.setdefault(labels, []).append(r)
        for rows in rows_of.values():
            if len(rows) > 1 and bool((self.present[rows].sum(axis=0) > 1).any()):
                return True
        return False


@dataclass(frozen=True, slots=True)
class RangeSeries:
    """One series of a range selection: labels and sorted samples (no stale markers)."""

    labels: Labels
    timestamps_ms: IntArray
    values: FloatArray


@dataclass(frozen=True, slots=True)
class Windows:
    """Every ``(series, step)`` window ``[ref - range, ref]`` of a range selection.

    Samples of all series are concatenated in ``ts``/``vs``; the window of series ``r`` at
    step ``i`` is ``ts[lo[r, i]:hi[r, i]]``. ``first`` is where each series starts.
    """

    ts: IntArray
    vs: FloatArray
    lo: IntArray
    hi: IntArray
    first: IntArray
    starts: IntArray
    refs: IntArray
    range_ms: int

    @property
    def counts(self) -> IntArray:
        return self.hi - self.lo


def windows(
    series: list[RangeSeries], refs: IntArray, range_ms: int, *, left_open: bool = False
) -> Windows:
    """Cut every step's window out of every series with one binary search.

    Windows are ``[ref - range, ref]`` as in Prometheus 2.x, or ``(ref - range, ref]`` with
    ``left_open`` (Prometheus 3).

    Series ``r``'s times are shifted by ``r * span`` (``span`` covers every time and
    window bound), which makes the concatenation one sorted array to search.
    """
    starts = refs - range_ms
    rows = len(series)
    lengths = np.fromiter((len(s.timestamps_ms) for s in series), dtype=np.int64, count=rows)
    first = np.zeros(rows, dtype=np.int64)
    np.cumsum(lengths[:-1], out=first[1:])
    if not rows or not lengths.any() or not len(refs):
        zeros = np.zeros((rows, len(refs)), dtype=np.int64) + first[:, None]
        return Windows(
            np.zeros(0, dtype=np.int64), np.zeros(0), zeros, zeros, first, starts, refs, range_ms
        )
    side: Literal["left", "right"] = "right" if left_open else "left"
    ts = np.concatenate([s.timestamps_ms for s in series])
    vs = np.concatenate([s.values for s in series])
    base = min(int(ts.min()), int(starts.min()))
    span = max(int(ts.max()), int(refs.max())) - base + 1
    if span * rows < 2**62:
        shift = np.arange(rows, dtype=np.int64)[:, None] * span - base
        keys = ts + np.repeat(shift[:, 0], lengths)
        lo = np.searchsorted(keys, starts + shift, side=side)
        hi = np.searchsorted(keys, refs + shift, side="right")
    else:  # times too far apart to shift: one search per series
        lo = np.zeros((rows, len(refs)), dtype=np.int64)
        hi = np.zeros((rows, len(refs)), dtype=np.int64)
        for r, s in enumerate(series):
            lo[r] = np.searchsorted(s.timestamps_ms, starts, side=side) + first[r]
            hi[r] = np.searchsorted(s.timestamps_ms, refs, side="right") + first[r]
    return Windows(ts, vs, lo, hi, first, starts, refs, range_ms)


def block_from_steps(steps: list[list[Sample]]) -> Block:
    """A ``Block`` of per-step vectors (rows in first-seen order)."""
    index: dict[Labels, int] = {}
    cells: list[tuple[int, int, float]] = []
    for i, vector in enumerate(steps):
        for labels, v in vector:
            r = index.setdefault(labels, len(index))
            cells.append((r, i, v))
    values = np.zeros((len(index), len(steps)))
    present = np.zeros((len(index), len(steps)), dtype=np.bool_)
    if cells:
        rows = np.fromiter((c[0] for c in cells), dtype=np.int64, count=len(cells))
        cols = np.fromiter((c[1] for c in cells), dtype=np.int64, count=len(cells))
        values[rows, cols] = np.fromiter((c[2] for c in cells), dtype=np.float64, count=len(cells))
        present[rows, cols] = True
    return Block(list(index), values, present)
