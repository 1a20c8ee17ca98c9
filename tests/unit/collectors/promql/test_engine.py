"""Engine cases over the in-memory source: selection, functions, aggregation, matching.

Expected values are worked out by hand from Prometheus 2.42's definitions; the
differential integration test checks the same engine against a real Prometheus.
"""

from __future__ import annotations

import math
import struct

import pytest

from collectors._core.errors import BadQueryError, QueryExecutionError
from collectors.promql import (
    QuerySettings,
    ScalarResult,
    VectorResult,
    evaluate_instant,
    evaluate_range,
)
from tests.helpers.memsource import MemorySource

STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
SETTINGS = QuerySettings()


def _source() -> MemorySource:
    src = MemorySource()
    # A counter sampled every 10 s from t=0 to t=600 s, +1 per sample, reset at 300 s.
    counter = [(i * 10_000, float(i if i < 30 else i - 30)) for i in range(61)]
    src.add({"__name__": "c_total", "job": "a"}, counter)
    src.add({"__name__": "g", "room": "x"}, [(0, 1.0), (100_000, 5.0)])
    src.add({"__name__": "g", "room": "y"}, [(0, 2.0), (100_000, 3.0)])
    src.add({"__name__": "g", "room": "z"}, [(0, 10.0), (100_000, -1.0)])
    src.add({"__name__": "s", "job": "a"}, [(0, 1.0), (10_000, STALE)])
    for le, count in (("0.1", 10.0), ("0.5", 30.0), ("1", 40.0), ("+Inf", 40.0)):
        src.add({"__name__": "h_bucket", "le": le}, [(0, count)])
    return src


async def _instant(query: str, at_s: float) -> list[tuple[dict[str, str], float]] | float:
    result = await evaluate_instant(
        query, time_ms=int(at_s * 1000), source=_source(), settings=SETTINGS
    )
    if isinstance(result, ScalarResult):
        return result.value
    assert isinstance(result, VectorResult)
    return [(dict(labels), v) for labels, v in result.samples]


@pytest.mark.parametrize(
    ("query", "at_s", "expected"),
    [
        pytest.param('g{room="x"}', 100, [({"__name__": "g", "room": "x"}, 5.0)], id="latest"),
        pytest.param(
            'g{room="x"}',
            399.999,
            [({"__name__": "g", "room": "x"}, 5.0)],
            id="lookback-edge-inclusive",
        ),
        pytest.param('g{room="x"}', 400.001, [], id="lookback-expired"),
        pytest.param("s", 5, [({"__name__": "s", "job": "a"}, 1.0)], id="before-stale"),
        pytest.param("s", 20, [], id="stale-marker-ends-series"),
        pytest.param(
            'g{room="x"} offset 100s', 150, [({"__name__": "g", "room": "x"}, 1.0)], id="offset"
        ),
        pytest.param('g{room="x"} @ 50', 1000, [({"__name__": "g", "room": "x"}, 1.0)], id="at"),
        pytest.param("increase(c_total[100s])", 200, [({"job": "a"}, 10.0)], id="increase-aligned"),
        pytest.param("rate(c_total[100s])", 200, [({"job": "a"}, 0.1)], id="rate"),
        pytest.param(
            "increase(c_total[100s])",
            350,
            [({"job": "a"}, 5.0 - 25.0 + 29.0)],
            id="increase-over-reset",
        ),
        pytest.param("irate(c_total[1m])", 300, [({"job": "a"}, 0.0)], id="irate-reset"),
        pytest.param(
            "delta(g[5m])",
            100,
            [({"room": "x"}, 6.0), ({"room": "y"}, 1.5), ({"room": "z"}, -16.5)],
            id="delta-extrapolates-half-an-interval",
        ),
        pytest.param(
            "idelta(g[5m])",
            100,
            [({"room": "x"}, 4.0), ({"room": "y"}, 1.0), ({"room": "z"}, -11.0)],
            id="idelta",
        ),
        pytest.param("sum(g)", 100, [({}, 7.0)], id="sum"),
        pytest.param("avg without (room) (g)", 100, [({}, 7.0 / 3)], id="avg-without"),
        pytest.param("min(g)", 100, [({}, -1.0)], id="min"),
        pytest.param("count(g)", 100, [({}, 3.0)], id="count"),
        pytest.param(
            "stddev(g)",
            0,
            [({}, math.sqrt(((1 - 13 / 3) ** 2 + (2 - 13 / 3) ** 2 + (10 - 13 / 3) ** 2) / 3))],
            id="stddev-population",
        ),
        pytest.param(
            "topk(1, g)", 100, [({"__name__": "g", "room": "x"}, 5.0)], id="topk-keeps-labels"
        ),
        pytest.param("bottomk(1, g)", 100, [({"__name__": "g", "room": "z"}, -1.0)], id="bottomk"),
        pytest.param("quantile(0.5, g)", 100, [({}, 3.0)], id="quantile"),
        pytest.param("quantile(0.25, g)", 100, [({}, 1.0)], id="quantile-interpolates"),
        pytest.param(
            "histogram_quantile(0.5, h_bucket)",
            0,
            [({}, 0.1 + 0.4 * (20 - 10) / 20)],
            id="histogram-quantile",
        ),
        pytest.param(
            "histogram_quantile(0.99, h_bucket)",
            0,
            [({}, 0.5 + 0.5 * (39.6 - 30) / 10)],
            id="histogram-quantile-top",
        ),
        pytest.param("g > 4", 100, [({"__name__": "g", "room": "x"}, 5.0)], id="filter-keeps-name"),
        pytest.param(
            "g > bool 4",
            100,
            [({"room": "x"}, 1.0), ({"room": "y"}, 0.0), ({"room": "z"}, 0.0)],
            id="bool-drops-name",
        ),
        pytest.param(
            "2 > g",
            100,
            [({"__name__": "g", "room": "z"}, -1.0)],
            id="scalar-left-keeps-vector-value",
        ),
        pytest.param(
            'label_replace(g{room="x"}, "r", "$1-$2", "room", "(.)(.*)")',
            100,
            [({"__name__": "g", "room": "x", "r": "x-"}, 5.0)],
            id="label-replace",
        ),
        pytest.param(
            'label_replace(g{room="x"}, "r", "$1x", "room", "(.*)")',
            100,
            [({"__name__": "g", "room": "x"}, 5.0)],
            id="label-replace-go-name-rule",
        ),
        pytest.param(
            'label_replace(g{room="x"}, "r", "v", "room", "y")',
            100,
            [({"__name__": "g", "room": "x"}, 5.0)],
            id="label-replace-anchored",
        ),
        pytest.param(
            'label_join(g{room="x"}, "j", "-", "room", "__name__")',
            100,
            [({"__name__": "g", "room": "x", "j": "x-g"}, 5.0)],
            id="label-join",
        ),
        pytest.param(
            'absent(nope{a="1", b=~"x", c="2", c="3"})',
            100,
            [({"a": "1"}, 1.0)],
            id="absent-labels",
        ),
        pytest.param("absent(g)", 100, [], id="absent-present"),
        pytest.param("scalar(g)", 100, math.nan, id="scalar-of-many"),
        pytest.param("time()", 12.5, 12.5, id="time"),
        pytest.param("vector(2)", 1, [({}, 2.0)], id="vector"),
        pytest.param(
            "clamp(g, 2, 4)",
            100,
            [({"room": "x"}, 4.0), ({"room": "y"}, 3.0), ({"room": "z"}, 2.0)],
            id="clamp",
        ),
        pytest.param("clamp(g, 4, 2)", 100, [], id="clamp-empty"),
        pytest.param(
            "round(g / 4, 0.5)",
            100,
            [({"room": "x"}, 1.5), ({"room": "y"}, 1.0), ({"room": "z"}, 0.0)],
            id="round",
        ),
        pytest.param(
            'count_values("v", g)',
            0,
            [({"v": "1"}, 1.0), ({"v": "10"}, 1.0), ({"v": "2"}, 1.0)],
            id="count-values",
        ),
        pytest.param(
            "g / on(room) group_left g",
            100,
            [({"room": "x"}, 1.0), ({"room": "y"}, 1.0), ({"room": "z"}, 1.0)],
            id="group-left",
        ),
        pytest.param(
            'g and on() g{room="x"}',
            100,
            [({"__name__": "g", "room": r}, v) for r, v in (("x", 5.0), ("y", 3.0), ("z", -1.0))],
            id="and-on-nothing",
        ),
        pytest.param(
            'g unless g{room="x"}',
            100,
            [({"__name__": "g", "room": r}, v) for r, v in (("y", 3.0), ("z", -1.0))],
            id="unless",
        ),
        pytest.param(
            "max_over_time(g[100s:50s])",
            100,
            [({"room": "x"}, 5.0), ({"room": "y"}, 3.0), ({"room": "z"}, 10.0)],
            id="subquery",
        ),
        pytest.param(
            "-g",
            0,
            [({"room": "x"}, -1.0), ({"room": "y"}, -2.0), ({"room": "z"}, -10.0)],
            id="negation",
        ),
    ],
)
async def test_instant(query: str, at_s: float, expected: object) -> None:
    got = await _instant(query, at_s)
    if isinstance(expected, float):
        assert isinstance(got, float)
        assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)
        return
    assert isinstance(got, list) and isinstance(expected, list)
    assert sorted(got, key=lambda s: sorted(s[0].items())) == [
        (labels, pytest.approx(v))
        for labels, v in sorted(expected, key=lambda s: sorted(s[0].items()))
    ]


@pytest.mark.parametrize(
    ("query", "error", "fragment"),
    [
        pytest.param("sum(", BadQueryError, "parse error", id="parse"),
        pytest.param(
            'sort_by_label(g, "room")', BadQueryError, '"sort_by_label"', id="unsupported"
        ),
        pytest.param(
            "g + ignoring(room) g",
            QueryExecutionError,
            "many-to-many matching not allowed",
            id="many-to-many",
        ),
        pytest.param(
            "g + on() group_left g", QueryExecutionError, "many-to-many", id="one-side-not-unique"
        ),
        pytest.param(
            'label_replace(g, "room", "same", "", "")',
            QueryExecutionError,
            "same labelset",
            id="duplicate-labelset",
        ),
        pytest.param(
            'label_replace(g, "0x", "", "room", "")',
            QueryExecutionError,
            "invalid destination label name",
            id="bad-destination",
        ),
        pytest.param("topk(NaN, g)", QueryExecutionError, "overflows int64", id="topk-nan"),
    ],
)
async def test_instant_errors(query: str, error: type[Exception], fragment: str) -> None:
    with pytest.raises(error) as caught:
        await evaluate_instant(query, time_ms=100_000, source=_source(), settings=SETTINGS)
    assert fragment in str(caught.value)


async def test_range_query_steps_and_gaps() -> None:
    result = await evaluate_range(
        "s", start_ms=0, end_ms=20_000, step_ms=5_000, source=_source(), settings=SETTINGS
    )
    assert [(s.timestamps_ms, s.values) for s in result.series] == [([0, 5_000], [1.0, 1.0])]


@pytest.mark.parametrize(
    ("query", "start", "end", "step", "fragment"),
    [
        pytest.param("g", 0, 11_001_000, 1000, "11,000 points", id="too-many-points"),
        pytest.param("g[5m]", 0, 10, 1, 'invalid expression type "range vector"', id="matrix"),
        pytest.param(
            "g", 10, 0, 1, "end timestamp must not be before start time", id="end-before-start"
        ),
        pytest.param("g", 0, 10, 0, "zero or negative", id="zero-step"),
    ],
)
async def test_range_errors(query: str, start: int, end: int, step: int, fragment: str) -> None:
    with pytest.raises(BadQueryError) as caught:
        await evaluate_range(
            query, start_ms=start, end_ms=end, step_ms=step, source=_source(), settings=SETTINGS
        )
    assert fragment in str(caught.value)


async def test_series_cap_warns() -> None:
    settings = QuerySettings(max_series=2)
    result = await evaluate_instant("g", time_ms=100_000, source=_source(), settings=settings)
    assert isinstance(result, VectorResult)
    assert len(result.samples) == 2 and "truncated" in result.warnings[0]


async def test_sample_limit_is_an_execution_error() -> None:
    with pytest.raises(QueryExecutionError, match="too many samples"):
        await evaluate_instant(
            "c_total", time_ms=600_000, source=_source(), settings=QuerySettings(max_samples=3)
        )
