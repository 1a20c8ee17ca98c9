"""``QuerySettings.prometheus3``: where Prometheus 3 answers differently from 2.42.

- ranges: ``(t - range, t]`` against 2.42's ``[t - range, t]``, for range selectors, the
  lookback delta and subquery grids. One gauge sampled at 0 s and 100 s: a sample exactly
  ``range`` before the evaluation time is inside in 2.42 and outside in Prometheus 3;
- regexes: ``.`` matches a newline (matchers and ``label_replace``);
- ``atan2`` drops the metric name.
"""

from __future__ import annotations

import pytest

from collectors.promql import (
    MatrixResult,
    QuerySettings,
    VectorResult,
    evaluate_instant,
)
from tests.helpers.memsource import MemorySource


def _source() -> MemorySource:
    src = MemorySource()
    src.add({"__name__": "g"}, [(0, 1.0), (100_000, 5.0)])
    src.add({"__name__": "t", "text": "a\nb"}, [(0, 1.0)])
    return src


@pytest.mark.parametrize(
    ("query", "at_s", "closed", "left_open"),
    [
        pytest.param("count_over_time(g[100s])", 100, [2.0], [1.0], id="range-selector"),
        pytest.param("g", 400, [5.0], [], id="lookback"),
        pytest.param("count_over_time(g[100s:50s])", 100, [3.0], [2.0], id="subquery-grid"),
        pytest.param("count_over_time(g[101s])", 100, [2.0], [2.0], id="inside-either-way"),
    ],
)
async def test_window_start(
    query: str, at_s: int, closed: list[float], left_open: list[float]
) -> None:
    for flag, expected in ((False, closed), (True, left_open)):
        result = await evaluate_instant(
            query,
            time_ms=at_s * 1000,
            source=_source(),
            settings=QuerySettings(prometheus3=flag),
        )
        assert isinstance(result, VectorResult)
        assert [v for _, v in result.samples] == expected, flag


async def test_range_selector_instant_query() -> None:
    for flag, points in ((False, 2), (True, 1)):
        result = await evaluate_instant(
            "g[100s]",
            time_ms=100_000,
            source=_source(),
            settings=QuerySettings(prometheus3=flag),
        )
        assert isinstance(result, MatrixResult)
        assert len(result.series[0].values) == points


@pytest.mark.parametrize(
    ("query", "closed", "p3"),
    [
        pytest.param('t{text=~"a.b"}', [], [1.0], id="regex-dot-newline"),
        pytest.param('t{text!~"a.b"}', [1.0], [], id="negative-regex-dot-newline"),
    ],
)
async def test_regex_dot(query: str, closed: list[float], p3: list[float]) -> None:
    for flag, expected in ((False, closed), (True, p3)):
        result = await evaluate_instant(
            query, time_ms=0, source=_source(), settings=QuerySettings(prometheus3=flag)
        )
        assert isinstance(result, VectorResult)
        assert [v for _, v in result.samples] == expected, flag


async def test_atan2_name() -> None:
    for flag, names in ((False, {"g"}), (True, set())):
        result = await evaluate_instant(
            "g atan2 1", time_ms=0, source=_source(), settings=QuerySettings(prometheus3=flag)
        )
        assert isinstance(result, VectorResult)
        assert {dict(labels).get("__name__") for labels, _ in result.samples} - {None} == names


async def test_label_replace_dot() -> None:
    query = 'label_replace(t, "x", "y", "text", "a.b")'
    for flag, x in ((False, ""), (True, "y")):
        result = await evaluate_instant(
            query, time_ms=0, source=_source(), settings=QuerySettings(prometheus3=flag)
        )
        assert isinstance(result, VectorResult)
        assert [dict(labels).get("x", "") for labels, _ in result.samples] == [x], flag
