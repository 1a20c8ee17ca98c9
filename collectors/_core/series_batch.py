"""Columnar sample batches: per series one label set, per sample only a timestamp and a value.

Why: remote_write requests carry thousands of series, and a ``Sample`` object per sample
(plus its own label mapping) cost more than everything else on the write path. A
``SeriesBatch`` keeps one interned ``SeriesLabels`` per series and the samples in two flat
columns, so the receiver, the pipeline and the store work per *series* and hand columns to
``struct`` in one call. ``SeriesLabels`` compare and hash by identity: a parser that sees
the same raw labels again returns the same object, so every later stage can cache what it
derived from it (resource labels added, series id) in a plain dict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from collectors._core.model import Sample

V = TypeVar("V")


@dataclass(frozen=True, slots=True, eq=False)
class SeriesLabels:
    """One series' identity as a receiver saw it: the metric name and the other labels.

    Hashes by identity (``eq=False``): two equal label sets may be two objects, which only
    means a cache computes the same derived value twice.
    """

    name: str
    labels: Mapping[str, str]
    """Every label except ``__name__``; treat as read-only (objects are shared)."""


@dataclass(frozen=True, slots=True)
class SeriesBatch:
    """Samples grouped in runs per series: run ``i`` is samples ``offsets[i]:offsets[i+1]``.

    The same series may appear in several runs (a sender may repeat a series; merged
    batches do); the store groups runs by series identity. ``len()`` counts samples.
    """

    series: list[SeriesLabels]
    offsets: list[int]
    """``len(series) + 1`` ascending indexes into the columns, starting at 0."""
    timestamps: list[int]
    values: list[float]

    def __len__(self) -> int:
        return len(self.timestamps)

    @staticmethod
    def empty() -> SeriesBatch:
        return SeriesBatch([], [0], [], [])

    def runs(self) -> list[tuple[SeriesLabels, int, int]]:
        """(series, start, end) per run."""
        o = self.offsets
        return [(s, o[i], o[i + 1]) for i, s in enumerate(self.series)]

    def with_series(self, series: list[SeriesLabels]) -> SeriesBatch:
        """The same columns under other (e.g. relabelled) series, one per run."""
        return SeriesBatch(series, self.offsets, self.timestamps, self.values)

    def to_samples(self) -> list[Sample]:
        """One ``Sample`` per sample (for sinks and tests that want records)."""
        ts, vs = self.timestamps, self.values
        return [
            Sample(s.name, s.labels, ts[i], vs[i]) for s, a, b in self.runs() for i in range(a, b)
        ]

    def split(self, max_samples: int) -> list[SeriesBatch]:
        """Consecutive pieces of at most ``max_samples`` samples (a run may be cut)."""
        if len(self) <= max_samples:
            return [self]
        pieces: list[SeriesBatch] = []
        series: list[SeriesLabels] = []
        offsets = [0]
        base = 0
        for s, first, b in self.runs():
            a = first
            while a < b:
                take = min(b, a + max_samples - offsets[-1])
                series.append(s)
                offsets.append(take - base)
                a = take
                if offsets[-1] == max_samples:
                    pieces.append(self._piece(series, offsets, base))
                    base += max_samples
                    series, offsets = [], [0]
        if series:
            pieces.append(self._piece(series, offsets, base))
        return pieces

    def _piece(self, series: list[SeriesLabels], offsets: list[int], base: int) -> SeriesBatch:
        end = base + offsets[-1]
        return SeriesBatch(series, offsets, self.timestamps[base:end], self.values[base:end])


def merge_batches(batches: list[SeriesBatch]) -> SeriesBatch:
    """One batch holding every run of ``batches``, in order."""
    if len(batches) == 1:
        return batches[0]
    series: list[SeriesLabels] = []
    offsets = [0]
    timestamps: list[int] = []
    values: list[float] = []
    for b in batches:
        base = len(timestamps)
        series.extend(b.series)
        offsets.extend(base + o for o in b.offsets[1:])
        timestamps.extend(b.timestamps)
        values.extend(b.values)
    return SeriesBatch(series, offsets, timestamps, values)


__all__ = ["SeriesBatch", "SeriesLabels", "merge_batches"]


def derived_per_series(
    cache: dict[SeriesLabels, V], series: list[SeriesLabels], derive: Callable[[SeriesLabels], V]
) -> list[V]:
    """``cache[ref]`` for every run's series, ``derive`` (which must store its result in
    ``cache``) for those not cached yet: each new object once, though it may have several
    runs. The usual batch, every series known, is one C-level loop (``map``): a
    remote_write request is thousands of series."""
    try:
        return list(map(cache.__getitem__, series))
    except KeyError:
        return [cache.get(ref) or derive(ref) for ref in series]
