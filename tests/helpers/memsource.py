"""An in-memory ``SeriesSource`` for engine tests: a list of series, filtered in Python.

Written for the tests (and the differential test's fallback), it answers ``select``,
``label_names`` and ``label_values`` exactly as the protocol documents, so the engine can
be tested without Redis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from collectors.promql.source import LabelMatcher, SeriesData


class MemorySource:
    """Series held in memory: ``{labels: [(timestamp_ms, value), ...]}``."""

    def __init__(self) -> None:
        self._series: dict[tuple[tuple[str, str], ...], dict[int, float]] = {}

    def add(self, labels: Mapping[str, str], points: Sequence[tuple[int, float]]) -> None:
        key = tuple(sorted(labels.items()))
        self._series.setdefault(key, {}).update(dict(points))

    def _matching(self, matchers: Sequence[LabelMatcher]) -> list[tuple[tuple[str, str], ...]]:
        return [
            key
            for key in self._series
            if all(m.matches(dict(key).get(m.name, "")) for m in matchers)
        ]

    async def select(
        self, matchers: Sequence[LabelMatcher], start_ms: int, end_ms: int
    ) -> list[SeriesData]:
        out = []
        for key in self._matching(matchers):
            points = sorted((t, v) for t, v in self._series[key].items() if start_ms <= t <= end_ms)
            if points:
                out.append(SeriesData(dict(key), [t for t, _ in points], [v for _, v in points]))
        return out

    def _any(
        self, matcher_sets: Sequence[Sequence[LabelMatcher]], start_ms: int, end_ms: int
    ) -> list[tuple[tuple[str, str], ...]]:
        keys = list(self._series) if not matcher_sets else []
        for matchers in matcher_sets:
            keys.extend(k for k in self._matching(matchers) if k not in keys)
        return [k for k in keys if any(start_ms <= t <= end_ms for t in self._series[k])]

    async def label_names(
        self, matchers: Sequence[Sequence[LabelMatcher]], start_ms: int, end_ms: int
    ) -> list[str]:
        return sorted({name for key in self._any(matchers, start_ms, end_ms) for name, _ in key})

    async def label_values(
        self, name: str, matchers: Sequence[Sequence[LabelMatcher]], start_ms: int, end_ms: int
    ) -> list[str]:
        return sorted(
            {v for key in self._any(matchers, start_ms, end_ms) for n, v in key if n == name}
        )
