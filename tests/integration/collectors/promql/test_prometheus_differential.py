"""Differential test: the same PromQL against Prometheus 2.42 and meshfed, same answers.

Both hold the same samples; every query of the table runs as an instant query and (when
it yields an instant vector or scalar) as a range query, through prometheus-api-client.
Results must have the same series, the same timestamps and values within a relative
difference of 1e-9 (NaN equal to NaN).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect

from tests.helpers.prometheus_peer import Peers

QUERIES = [
    pytest.param('http_requests_total{job="api"}', id="selector-eq"),
    pytest.param("http_requests_total{job='web',code!='500'}", id="selector-single-quotes-neq"),
    pytest.param('http_requests_total{instance=~"a.*"}', id="selector-regex"),
    pytest.param('http_requests_total{instance!~"a.*",code="200"}', id="selector-not-regex"),
    pytest.param('{__name__=~"temp.*"}', id="selector-name-regex"),
    pytest.param("temperature_celsius offset 5m", id="offset"),
    pytest.param("temperature_celsius @ {at}", id="at-modifier"),
    pytest.param("up", id="stale-marker"),
    pytest.param("rate(http_requests_total[5m])", id="rate"),
    pytest.param("rate(http_requests_total[1m])", id="rate-short-window"),
    pytest.param("irate(http_requests_total[5m])", id="irate"),
    pytest.param("increase(http_requests_total[10m])", id="increase"),
    pytest.param("delta(temperature_celsius[10m])", id="delta"),
    pytest.param("idelta(temperature_celsius[5m])", id="idelta"),
    pytest.param("rate(http_requests_total[5m] offset 3m)", id="rate-offset"),
    pytest.param("avg_over_time(temperature_celsius[10m])", id="avg-over-time"),
    pytest.param("sum_over_time(temperature_celsius[10m])", id="sum-over-time"),
    pytest.param("min_over_time(temperature_celsius[10m])", id="min-over-time"),
    pytest.param("max_over_time(odd_gauge[10m])", id="max-over-time-nan"),
    pytest.param("count_over_time(up[10m])", id="count-over-time-stale"),
    pytest.param("last_over_time(temperature_celsius[2m])", id="last-over-time"),
    pytest.param("stddev_over_time(temperature_celsius[15m])", id="stddev-over-time"),
    pytest.param("stdvar_over_time(temperature_celsius[15m])", id="stdvar-over-time"),
    pytest.param("quantile_over_time(0.9, temperature_celsius[15m])", id="quantile-over-time"),
    pytest.param("sum(rate(http_requests_total[5m]))", id="sum"),
    pytest.param("sum by (job) (rate(http_requests_total[5m]))", id="sum-by"),
    pytest.param("sum without (instance) (rate(http_requests_total[5m]))", id="sum-without"),
    pytest.param("avg by (code) (http_requests_total)", id="avg-by"),
    pytest.param("min(temperature_celsius)", id="min"),
    pytest.param("max by (job) (http_requests_total)", id="max-by"),
    pytest.param("count by (job) (http_requests_total)", id="count-by"),
    pytest.param("stddev(temperature_celsius)", id="stddev"),
    pytest.param("stdvar by (job) (http_requests_total)", id="stdvar-by"),
    pytest.param("topk(2, temperature_celsius)", id="topk"),
    pytest.param("bottomk(1, http_requests_total) by (job)", id="bottomk-by"),
    pytest.param("quantile(0.75, temperature_celsius)", id="quantile"),
    pytest.param("quantile by (job) (0.3, http_requests_total)", id="quantile-by"),
    pytest.param("temperature_celsius * 2 + 1", id="vector-scalar-arith"),
    pytest.param("100 - temperature_celsius", id="scalar-vector-arith"),
    pytest.param("temperature_celsius > 20", id="comparison-filter"),
    pytest.param("temperature_celsius > bool 20", id="comparison-bool"),
    pytest.param("1 < bool temperature_celsius", id="scalar-comparison-bool"),
    pytest.param(
        'http_requests_total{code="500"} / ignoring(code) http_requests_total{code="200"}',
        id="ignoring",
    ),
    pytest.param(
        'rate(http_requests_total{code="500"}[5m]) / on(job, instance) '
        'rate(http_requests_total{code="200"}[5m])',
        id="on",
    ),
    pytest.param(
        "http_requests_total / on(job) group_left sum by (job) (http_requests_total)",
        id="group-left",
    ),
    pytest.param(
        "sum by (job) (http_requests_total) * on(job) group_right "
        'http_requests_total{instance="a:80"}',
        id="group-right",
    ),
    pytest.param('http_requests_total and on(code) http_requests_total{code="500"}', id="and"),
    pytest.param('up{job="steady"} or up{job="flaky"}', id="or"),
    pytest.param("http_requests_total unless on(instance) up", id="unless"),
    pytest.param(
        "histogram_quantile(0.9, sum by (le, job) (rate(request_duration_seconds_bucket[5m])))",
        id="histogram-quantile",
    ),
    pytest.param(
        "histogram_quantile(0.5, rate(request_duration_seconds_bucket[10m]))",
        id="histogram-quantile-median",
    ),
    pytest.param(
        'label_replace(temperature_celsius, "floor", "$1-level", "room", "(.)(.*)")',
        id="label-replace",
    ),
    pytest.param(
        'label_join(http_requests_total, "id", "/", "job", "instance", "code")', id="label-join"
    ),
    pytest.param("abs(odd_gauge)", id="abs"),
    pytest.param("ceil(temperature_celsius)", id="ceil"),
    pytest.param("floor(temperature_celsius)", id="floor"),
    pytest.param("round(temperature_celsius, 0.5)", id="round"),
    pytest.param("clamp(temperature_celsius, 15, 25)", id="clamp"),
    pytest.param("clamp_min(temperature_celsius, 20)", id="clamp-min"),
    pytest.param("clamp_max(temperature_celsius, 20)", id="clamp-max"),
    pytest.param("sqrt(http_requests_total)", id="sqrt"),
    pytest.param("ln(http_requests_total)", id="ln"),
    pytest.param("exp(temperature_celsius / 10)", id="exp"),
    pytest.param('absent(nonexistent{job="x", env=~"p.*"})', id="absent"),
    pytest.param("absent(up)", id="absent-present"),
    pytest.param("vector(1)", id="vector"),
    pytest.param("scalar(sum(up))", id="scalar"),
    pytest.param("time()", id="time"),
    pytest.param("-temperature_celsius", id="negation"),
    pytest.param("max_over_time(rate(http_requests_total[1m])[10m:1m])", id="subquery"),
    # added for full 2.42 parity (issue 17)
    pytest.param("deriv(temperature_celsius[10m])", id="deriv"),
    pytest.param("deriv(http_requests_total[5m] @ {at})", id="deriv-at"),
    pytest.param("predict_linear(temperature_celsius[15m], 3600)", id="predict-linear"),
    pytest.param("predict_linear(http_requests_total[10m] offset 2m, 600)", id="predict-offset"),
    pytest.param("holt_winters(temperature_celsius[10m], 0.5, 0.3)", id="holt-winters"),
    pytest.param("year()", id="year"),
    pytest.param("month()", id="month"),
    pytest.param("day_of_month()", id="day-of-month"),
    pytest.param("day_of_week()", id="day-of-week"),
    pytest.param("day_of_year()", id="day-of-year"),
    pytest.param("days_in_month()", id="days-in-month"),
    pytest.param("hour()", id="hour"),
    pytest.param("minute(timestamp(up))", id="minute-of-timestamp"),
    pytest.param("hour(timestamp(temperature_celsius @ {at}))", id="hour-at"),
    pytest.param("day_of_week(vector(1e9) + temperature_celsius * 86400)", id="day-of-week-vector"),
    pytest.param("sin(temperature_celsius)", id="sin"),
    pytest.param("cos(temperature_celsius)", id="cos"),
    pytest.param("tan(odd_gauge)", id="tan-nan"),
    pytest.param("asin(temperature_celsius / 40)", id="asin"),
    pytest.param("acos(odd_gauge / 60)", id="acos"),
    pytest.param("atan(temperature_celsius)", id="atan"),
    pytest.param("sinh(temperature_celsius / 10)", id="sinh"),
    pytest.param("cosh(temperature_celsius / 10)", id="cosh"),
    pytest.param("tanh(odd_gauge)", id="tanh"),
    pytest.param("asinh(odd_gauge)", id="asinh"),
    pytest.param("acosh(temperature_celsius)", id="acosh"),
    pytest.param("atanh(odd_gauge / 60)", id="atanh"),
    pytest.param("deg(temperature_celsius)", id="deg"),
    pytest.param("rad(temperature_celsius)", id="rad"),
    pytest.param("pi()", id="pi"),
    pytest.param("temperature_celsius atan2 2", id="atan2-scalar-keeps-name"),
    pytest.param("temperature_celsius atan2 temperature_celsius offset 5m", id="atan2-vector"),
    pytest.param("clamp(temperature_celsius, 0, NaN)", id="clamp-nan"),
    pytest.param("round(temperature_celsius, 0)", id="round-zero"),
    pytest.param('http_requests_total{job=~".*((?i)PI).*"}', id="regex-inline-flag"),
    pytest.param('http_requests_total{instance=~"(?i)A.*|x"}', id="regex-flag-alternation"),
    pytest.param(
        'http_requests_total{instance!~"[[:alpha:]]:[[:digit:]]+"}', id="regex-posix-class"
    ),
    pytest.param('up{job=~"(?U)st.*y"}', id="regex-ungreedy"),
    pytest.param(
        'label_replace(temperature_celsius, "x", "$1/$2", "room", "(?U)(.+)(.*)")',
        id="label-replace-ungreedy",
    ),
    pytest.param(
        'label_replace(temperature_celsius, "x", "$1", "room", "(?i)(K|H).*")',
        id="label-replace-inline-flag",
    ),
    pytest.param(
        "histogram_quantile(0.9, rate(request_duration_seconds_bucket[5m] offset 1m))",
        id="histogram-quantile-offset",
    ),
]
ORDERED = [
    pytest.param("topk(3, http_requests_total)", id="topk"),
    pytest.param("bottomk(3, http_requests_total)", id="bottomk"),
    pytest.param("topk by (job) (2, http_requests_total)", id="topk-by"),
    pytest.param("bottomk(2, odd_gauge or temperature_celsius)", id="bottomk-nan"),
    pytest.param("sort_desc(temperature_celsius)", id="sort-desc"),
]
"""Instant queries whose result order Prometheus defines (sorted), compared in order."""


def _key(item: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(item.get("metric", {}).items()))


def _same_value(a: str, b: str) -> bool:
    x, y = float(a), float(b)
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if x == y:
        return True
    return abs(x - y) <= 1e-9 * max(abs(x), abs(y))


def _compare(expected: Any, got: Any) -> None:
    if expected and isinstance(expected[0], (int, float)):  # a scalar: [ts, "v"]
        assert got[0] == expected[0] and _same_value(expected[1], got[1]), (expected, got)
        return
    want = {_key(s): s for s in expected}
    have = {_key(s): s for s in got}
    assert sorted(have) == sorted(want), (
        f"series differ:\nprometheus {sorted(want)}\nmeshfed {sorted(have)}"
    )
    for key, s in want.items():
        points_w = s["values"] if "values" in s else [s["value"]]
        h = have[key]
        points_h = h["values"] if "values" in h else [h["value"]]
        assert [p[0] for p in points_h] == [p[0] for p in points_w], f"timestamps differ for {key}"
        for pw, ph in zip(points_w, points_h, strict=True):
            assert _same_value(pw[1], ph[1]), (
                f"{key} at {pw[0]}: prometheus {pw[1]} meshfed {ph[1]}"
            )


def _clients(peers: Peers) -> tuple[PrometheusConnect, PrometheusConnect]:
    return (
        PrometheusConnect(url=peers.prometheus_url, disable_ssl=True),
        PrometheusConnect(url=peers.meshfed_url, disable_ssl=True),
    )


def _query(peers: Peers, query: str) -> str:
    return query.replace("{at}", str((peers.t0_ms + 20 * 60_000 + 123) / 1000))


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("minutes", [pytest.param(40, id="t40m"), pytest.param(27, id="t27m")])
def test_instant(peers: Peers, query: str, minutes: int) -> None:
    prom, mesh = _clients(peers)
    q = _query(peers, query)
    at = {"time": (peers.t0_ms + minutes * 60_000 + 7_250) / 1000}
    _compare(prom.custom_query(q, params=at), mesh.custom_query(q, params=at))


@pytest.mark.parametrize("query", QUERIES)
def test_range(peers: Peers, query: str) -> None:
    prom, mesh = _clients(peers)
    q = _query(peers, query)
    start = datetime.fromtimestamp((peers.t0_ms + 8 * 60_000) / 1000, tz=UTC)
    end = datetime.fromtimestamp((peers.t0_ms + 44 * 60_000) / 1000, tz=UTC)
    _compare(
        prom.custom_query_range(q, start_time=start, end_time=end, step="37s"),
        mesh.custom_query_range(q, start_time=start, end_time=end, step="37s"),
    )


def test_range_selector_instant(peers: Peers) -> None:
    prom, mesh = _clients(peers)
    at = {"time": (peers.t0_ms + 30 * 60_000) / 1000}
    for q in (
        "temperature_celsius[2m]",
        "up[40m]",
        "http_requests_total{code='200'}[1m] offset 1m",
    ):
        _compare(prom.custom_query(q, params=at), mesh.custom_query(q, params=at))


@pytest.mark.parametrize("query", ORDERED)
def test_order(peers: Peers, query: str) -> None:
    prom, mesh = _clients(peers)
    at = {"time": (peers.t0_ms + 40 * 60_000) / 1000}
    want, got = prom.custom_query(query, params=at), mesh.custom_query(query, params=at)
    _compare(want, got)
    assert [_key(s) for s in got] == [_key(s) for s in want]


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("http_requests_total + ignoring(code) http_requests_total", id="many-to-many"),
        pytest.param(
            'histogram_quantile(0.9, {__name__=~"request_.*_bucket"})', id="two-histograms"
        ),
        pytest.param("holt_winters(temperature_celsius[10m], 1.5, 0.3)", id="bad-smoothing"),
        pytest.param("sum(", id="parse-error"),
        pytest.param(
            "sum by (job) (http_requests_total) * on(job) group_right(code) "
            'http_requests_total{instance="a:80"}',
            id="grouping-not-unique",
        ),
        pytest.param("rate(temperature_celsius)", id="wrong-argument-type"),
    ],
)
def test_errors_match(peers: Peers, query: str) -> None:
    prom, mesh = _clients(peers)
    at = {"time": (peers.t0_ms + 40 * 60_000) / 1000}
    with pytest.raises(PrometheusApiClientException) as want:
        prom.custom_query(query, params=at)
    with pytest.raises(PrometheusApiClientException) as got:
        mesh.custom_query(query, params=at)
    assert str(got.value).split(" ")[:4] == str(want.value).split(" ")[:4]
