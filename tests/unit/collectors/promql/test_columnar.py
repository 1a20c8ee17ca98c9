"""Range queries that only come out right if the columnar paths keep Prometheus's order.

The engine evaluates range functions and aggregations for all series and steps at once;
these cases are built so that a reordered sum, a missed counter reset in one window or a
dropped NaN rule gives a different answer. Expected values are worked out by hand.
"""

from __future__ import annotations

import math
import struct

import pytest

from collectors.promql import QuerySettings, evaluate_range
from tests.helpers.memsource import MemorySource

STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def _source() -> MemorySource:
    src = MemorySource()
    # Kahan: naive summation of these gives 0.0 instead of 1.0 from t=20 s on.
    src.add({"__name__": "k"}, [(0, 1e100), (10_000, 1.0), (20_000, -1e100)])
    # A counter with resets at 20 s and 40 s.
    points = [(i * 10_000, v) for i, v in enumerate([0.0, 5.0, 2.0, 7.0, 1.0, 4.0])]
    src.add({"__name__": "c_total", "job": "a"}, points)
    src.add({"__name__": "n", "i": "1"}, [(0, math.nan), (10_000, 1.0), (20_000, 3.0)])
    src.add({"__name__": "n", "i": "2"}, [(0, 2.0), (10_000, math.inf), (20_000, 2.0)])
    src.add({"__name__": "s"}, [(0, 1.0), (10_000, STALE), (20_000, 2.0)])
    return src


async def _range(query: str, start_s: int, end_s: int) -> list[tuple[dict[str, str], list[float]]]:
    result = await evaluate_range(
        query,
        start_ms=start_s * 1000,
        end_ms=end_s * 1000,
        step_ms=10_000,
        source=_source(),
        settings=QuerySettings(),
    )
    return [(dict(s.labels), s.values) for s in result.series]


@pytest.mark.parametrize(
    ("query", "start_s", "end_s", "expected"),
    [
        pytest.param(
            "sum_over_time(k[1m])", 0, 30, [({}, [1e100, 1e100, 1.0, 1.0])], id="kahan-sum"
        ),
        pytest.param(
            "increase(c_total[30s])",
            30,
            50,
            [({"job": "a"}, [12.0, 8.0, 9.0])],
            id="resets-per-window",
        ),
        pytest.param(
            "resets(c_total[30s])", 30, 50, [({"job": "a"}, [1.0, 2.0, 1.0])], id="resets"
        ),
        pytest.param(
            "changes(n[30s])",
            20,
            20,
            [({"i": "1"}, [2.0]), ({"i": "2"}, [2.0])],
            id="changes-nan",
        ),
        pytest.param(
            "max_over_time(n[30s])",
            0,
            20,
            [({"i": "1"}, [math.nan, 1.0, 3.0]), ({"i": "2"}, [2.0, math.inf, math.inf])],
            id="max-nan-first",
        ),
        pytest.param(
            "avg(n)",
            0,
            20,
            [({}, [math.nan, math.inf, 2.5])],
            id="avg-incremental-mean",
        ),
        pytest.param(
            "count_over_time(s[15s])", 0, 20, [({}, [1.0, 1.0, 1.0])], id="stale-left-out"
        ),
        pytest.param("s", 0, 20, [({"__name__": "s"}, [1.0, 2.0])], id="stale-ends-instant"),
        pytest.param(
            "sum by (job) (rate(c_total[30s])) * 30", 50, 50, [({"job": "a"}, [9.0])], id="chain"
        ),
    ],
)
async def test_columnar_paths(
    query: str, start_s: int, end_s: int, expected: list[tuple[dict[str, str], list[float]]]
) -> None:
    got = await _range(query, start_s, end_s)
    assert [labels for labels, _ in got] == [labels for labels, _ in expected]
    for (_, values), (_, want) in zip(got, expected, strict=True):
        assert len(values) == len(want)
        for v, w in zip(values, want, strict=True):
            assert (math.isnan(v) and math.isnan(w)) or v == pytest.approx(w, rel=1e-12)
