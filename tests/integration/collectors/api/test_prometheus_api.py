"""The Prometheus-compatible API as clients see it: prometheus-api-client and raw HTTP.

The app (as ``meshfed store serve`` builds it) runs under uvicorn on a loopback port over a
real TelemetryStore with an embedded Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_api_client import PrometheusConnect

from tests.helpers.prometheus_dataset import make_dataset
from tests.helpers.prometheus_peer import store_app_factory
from tests.helpers.prometheus_remote import serving_async


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    t0, series = make_dataset()
    factory = store_app_factory(tmp_path_factory.mktemp("api-redis"), series)
    with serving_async(factory) as url:
        yield url, t0


def _at(t0: int, minutes: int) -> datetime:
    return datetime.fromtimestamp((t0 + minutes * 60_000) / 1000, tz=UTC)


@pytest.mark.parametrize("method", [pytest.param("GET", id="get"), pytest.param("POST", id="post")])
def test_client_methods(served: tuple[str, int], method: str) -> None:
    url, t0 = served
    prom = PrometheusConnect(url=url, disable_ssl=True, method=method)
    assert prom.check_prometheus_connection()
    assert "temperature_celsius" in prom.all_metrics()
    when = {"time": _at(t0, 30).timestamp()}
    result = prom.custom_query("sum by (room) (temperature_celsius)", params=when)
    assert {r["metric"]["room"] for r in result} == {"kitchen", "hall", "cellar", "attic"}
    ranged = prom.custom_query_range(
        "temperature_celsius{room='hall'}", _at(t0, 10), _at(t0, 20), step="60"
    )
    assert len(ranged) == 1 and len(ranged[0]["values"]) == 11
    raw = prom.get_metric_range_data(
        "temperature_celsius", {"room": "attic"}, start_time=_at(t0, 10), end_time=_at(t0, 15)
    )
    assert len(raw) == 1 and 19 <= len(raw[0]["values"]) <= 21
    series = prom.get_series(_at(t0, 0), _at(t0, 45), params={"match[]": "up"})
    assert sorted(s["job"] for s in series) == ["flaky", "steady"]


@pytest.mark.parametrize(
    ("path", "params", "status", "error_type", "fragment"),
    [
        pytest.param("query", {"query": "sum("}, 400, "bad_data", "parse error", id="parse"),
        pytest.param("query", {}, 400, "bad_data", "query", id="missing-query"),
        pytest.param(
            "query",
            {"query": "up", "time": "yesterday"},
            400,
            "bad_data",
            'invalid parameter "time"',
            id="bad-time",
        ),
        pytest.param(
            "query",
            {"query": 'sort_by_label(up, "job")'},
            400,
            "bad_data",
            '"sort_by_label"',
            id="unsupported-function",
        ),
        pytest.param(
            "query",
            {"query": "up", "timeout": "soon"},
            400,
            "bad_data",
            'invalid parameter "timeout"',
            id="bad-timeout",
        ),
        pytest.param(
            "query_range",
            {"query": "up", "start": "0", "end": "100000", "step": "1"},
            400,
            "bad_data",
            "exceeded maximum resolution of 11,000 points per timeseries",
            id="too-many-points",
        ),
        pytest.param(
            "query_range",
            {"query": "up", "start": "10", "end": "0", "step": "1"},
            400,
            "bad_data",
            'invalid parameter "end"',
            id="end-before-start",
        ),
        pytest.param(
            "query_range",
            {"query": "up", "start": "0", "end": "10", "step": "0"},
            400,
            "bad_data",
            "zero or negative query resolution step",
            id="zero-step",
        ),
        pytest.param(
            "query_range",
            {"query": "up", "start": "0", "end": "10", "step": "x"},
            400,
            "bad_data",
            'invalid parameter "step"',
            id="bad-step",
        ),
        pytest.param(
            "query_range",
            {"query": "up[5m]", "start": "0", "end": "10", "step": "1"},
            400,
            "bad_data",
            'invalid expression type "range vector"',
            id="range-of-matrix",
        ),
        pytest.param("series", {}, 400, "bad_data", "no match[] parameter", id="series-no-match"),
        pytest.param(
            "series",
            {"match[]": "sum(up)"},
            400,
            "bad_data",
            'invalid parameter "match[]"',
            id="series-not-selector",
        ),
        pytest.param(
            "query",
            {"query": "temperature_celsius + ignoring(room) temperature_celsius", "time": "{t30}"},
            422,
            "execution",
            "many-to-many matching not allowed",
            id="many-to-many",
        ),
        pytest.param(
            "query",
            {"query": 'label_replace(up, "1x", "", "job", ".*")', "time": "{t30}"},
            422,
            "execution",
            "invalid destination label name",
            id="bad-label-replace",
        ),
    ],
)
def test_error_envelopes(
    served: tuple[str, int],
    path: str,
    params: dict[str, str],
    status: int,
    error_type: str,
    fragment: str,
) -> None:
    url, t0 = served
    params = {k: v.replace("{t30}", str(_at(t0, 30).timestamp())) for k, v in params.items()}
    for response in (
        httpx.get(f"{url}/api/v1/{path}", params=params),
        httpx.post(f"{url}/api/v1/{path}", data=params),
    ):
        body = response.json()
        assert response.status_code == status, body
        assert body["status"] == "error" and body["errorType"] == error_type
        assert fragment in body["error"]


def test_form_post_and_formatting(served: tuple[str, int]) -> None:
    url, t0 = served
    t = (t0 + 30 * 60_000 + 500) / 1000
    for query, text in (
        ("vector(1.5) * 2 + 0.25", "3.25"),
        ("vector(1e20)", "100000000000000000000"),
    ):
        response = httpx.post(f"{url}/api/v1/query", data={"query": query, "time": str(t)})
        assert response.json() == {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": {}, "value": [t, text]}]},
        }
    scalar = httpx.get(f"{url}/api/v1/query", params={"query": "1/0", "time": "10.5"}).json()
    assert scalar["data"] == {"resultType": "scalar", "result": [10.5, "+Inf"]}
    assert '"value":[' in httpx.get(f"{url}/api/v1/query", params={"query": "vector(0)"}).text


def test_labels_values_metadata_and_probes(served: tuple[str, int]) -> None:
    url, _ = served
    assert "room" in httpx.get(f"{url}/api/v1/labels").json()["data"]
    values = httpx.get(f"{url}/api/v1/label/job/values").json()["data"]
    assert {"api", "web", "flaky", "steady"} <= set(values)
    bad = httpx.get(f"{url}/api/v1/label/0bad/values")
    assert bad.status_code == 400 and bad.json()["errorType"] == "bad_data"
    limited = httpx.get(f"{url}/api/v1/label/job/values", params={"limit": "1"}).json()
    assert len(limited["data"]) == 1 and limited["warnings"]
    assert httpx.get(f"{url}/api/v1/metadata").json()["status"] == "success"
    assert httpx.get(f"{url}/").status_code == 200
    assert httpx.get(f"{url}/-/ready").status_code == 200


def test_range_query_window(served: tuple[str, int]) -> None:
    url, t0 = served
    start = _at(t0, 5)
    end = start + timedelta(minutes=5)
    body = httpx.get(
        f"{url}/api/v1/query_range",
        params={
            "query": "count(temperature_celsius)",
            "start": start.isoformat(),
            "end": end.isoformat(),
            "step": "1m",
        },
    ).json()
    assert [v[1] for v in body["data"]["result"][0]["values"]] == ["4"] * 6
