"""Prometheus API parameter parsing and JSON number formatting, case by case."""

from __future__ import annotations

import math

import pytest

from collectors._core.errors import ParamError
from collectors.api.prom_params import format_ts, parse_duration_ms, parse_time
from collectors.promql.functions import bucket_quantile
from collectors.promql.values import format_float


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(0.0, "0", id="zero"),
        pytest.param(-0.0, "-0", id="negative-zero"),
        pytest.param(1.5, "1.5", id="fraction"),
        pytest.param(3.0, "3", id="integer"),
        pytest.param(1e20, "100000000000000000000", id="large-no-exponent"),
        pytest.param(1.5e-7, "0.00000015", id="small-no-exponent"),
        pytest.param(0.1 + 0.2, "0.30000000000000004", id="shortest-round-trip"),
        pytest.param(math.nan, "NaN", id="nan"),
        pytest.param(math.inf, "+Inf", id="inf"),
        pytest.param(-math.inf, "-Inf", id="minus-inf"),
    ],
)
def test_format_float(value: float, text: str) -> None:
    assert format_float(value) == text


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        pytest.param(1435781451781, "1435781451.781", id="millis"),
        pytest.param(1435781451500, "1435781451.500", id="three-digits-kept"),
        pytest.param(1435781451005, "1435781451.005", id="leading-zeros"),
        pytest.param(1435781451000, "1435781451", id="whole"),
    ],
)
def test_format_ts(ms: int, text: str) -> None:
    assert format_ts(ms) == text


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        pytest.param("1435781451.781", 1435781451781, id="unix-float"),
        pytest.param("1435781451", 1435781451000, id="unix-int"),
        pytest.param("2015-07-01T20:10:51.781Z", 1435781451781, id="rfc3339"),
        pytest.param(
            "2015-07-01T22:10:51.781123456+02:00", 1435781451781, id="rfc3339-nanos-offset"
        ),
    ],
)
def test_parse_time(text: str, ms: int) -> None:
    assert parse_time("time", text) == ms


@pytest.mark.parametrize("text", ["", "yesterday", "2015-07-01", "1_000", "NaN"])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(ParamError, match='invalid parameter "time"'):
        parse_time("time", text)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        pytest.param("15", 15_000, id="seconds"),
        pytest.param("0.5", 500, id="fraction"),
        pytest.param("5m", 300_000, id="minutes"),
        pytest.param("1h30m", 5_400_000, id="compound"),
        pytest.param("1d", 86_400_000, id="day"),
        pytest.param("100ms", 100, id="millis"),
    ],
)
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration_ms("step", text) == ms


@pytest.mark.parametrize("text", ["", "5x", "m5", "1.5h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ParamError, match='invalid parameter "step"'):
        parse_duration_ms("step", text)


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        pytest.param(0.5, [(1.0, 5.0), (math.inf, 10.0)], 1.0, id="upper-bucket-returns-bound"),
        pytest.param(0.5, [(1.0, 5.0)], math.nan, id="no-inf-bucket"),
        pytest.param(0.5, [(1.0, 6.0), (2.0, 4.0), (math.inf, 10.0)], 5 / 6, id="monotonic-fix"),
        pytest.param(
            0.5, [(1.0, 2.0), (1.0, 2.0), (math.inf, 8.0)], 1.0, id="coalesce-equal-bounds"
        ),
        pytest.param(-1, [(1.0, 2.0), (math.inf, 2.0)], -math.inf, id="phi-below-zero"),
        pytest.param(0.5, [(1.0, 0.0), (math.inf, 0.0)], math.nan, id="no-observations"),
    ],
)
def test_bucket_quantile(q: float, buckets: list[tuple[float, float]], expected: float) -> None:
    got = bucket_quantile(q, buckets)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)
