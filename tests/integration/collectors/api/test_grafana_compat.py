"""Grafana's Prometheus data source against the query API, request by request.

Grafana cannot run here, so each case replays a request the data source sends (read from
grafana/grafana ``pkg/promlib`` and ``packages/grafana-prometheus``: the health check, the
settings page's version detection, the exemplar probe, rule loading, the label and metric
browsers, a dashboard panel and Explore) against the app served by uvicorn over a real
TelemetryStore, and checks the answer has the shape Grafana parses. ``httpMethod`` is POST
by default in Grafana, so the backend's queries are url-encoded form POSTs; label values,
metadata, rules, alerts and buildinfo are always GET.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.helpers.prometheus_dataset import make_dataset
from tests.helpers.prometheus_peer import store_app_factory
from tests.helpers.prometheus_remote import serving_async

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


@dataclass(frozen=True)
class Served:
    url: str
    t0_s: int
    """Start of the dataset (unix seconds); it spans 45 minutes."""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    t0, series = make_dataset()
    factory = store_app_factory(tmp_path_factory.mktemp("grafana-redis"), series)
    with serving_async(factory) as url:
        yield Served(url, t0 // 1000)


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=30) as c:
        yield c


@dataclass(frozen=True)
class Call:
    """One request as Grafana sends it; times are offsets from the dataset start."""

    method: str
    path: str
    params: Callable[[int], dict[str, str]]
    """Parameters from the dataset start (unix seconds): URL query on GET, form on POST."""


def _send(client: httpx.Client, served: Served, call: Call) -> httpx.Response:
    params = call.params(served.t0_s)
    if call.method == "GET":
        return client.get(call.path, params=params)
    return client.post(
        call.path,
        content=str(httpx.QueryParams(params)),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]


def _window(t0: int) -> dict[str, str]:
    """``getAdjustedInterval``: whole seconds around the dashboard time range."""
    return {"start": str(t0 - 60), "end": str(t0 + 46 * 60)}


def _check_health(data: Any) -> None:
    # promlib healthcheck: instant "1+1" over [1 s, 4 s] -> evaluated at time=4.
    assert data == {"resultType": "scalar", "result": [4, "2"]}


def _check_buildinfo(data: Any) -> None:
    # Grafana: semver.valid(version) for version detection; no ``features`` => Prometheus
    # (a features map means Mimir and turns on the ruler API).
    assert "features" not in data and "application" not in data
    match = _SEMVER.match(data["version"])
    assert match is not None, data
    major, minor, _ = (int(g) for g in match.groups())
    assert (major, minor) >= (2, 24), "below 2.24 Grafana stops sending match[] to /labels"
    for field in ("revision", "branch", "buildUser", "buildDate", "goVersion"):
        assert isinstance(data[field], str)


def _check_empty_list(data: Any) -> None:
    assert data == []


def _check_rules(data: Any) -> None:
    # extractRuleMappingFromGroups(res.data.data.groups)
    assert data == {"groups": []}


def _check_alerts(data: Any) -> None:
    assert data == {"alerts": []}


def _check_label_names(data: Any) -> None:
    assert isinstance(data, list) and all(isinstance(v, str) for v in data)
    assert {"__name__", "job", "instance", "code"} <= set(data)
    assert data == sorted(data)


def _check_metric_names(data: Any) -> None:
    assert isinstance(data, list)
    assert "http_requests_total" in data and data == sorted(data)


def _check_job_values(data: Any) -> None:
    assert data == ["api", "web"]


def _check_series(data: Any) -> None:
    # processSeries: a list of flat {label: value} objects with __name__.
    assert isinstance(data, list) and data
    for item in data:
        assert item["__name__"] == "http_requests_total"
        assert all(isinstance(v, str) for v in item.values())


def _check_metadata(data: Any) -> None:
    # fixSummariesMetadata(res.data.data): {metric: [{type, help, unit}]}
    assert isinstance(data, dict)
    for entries in data.values():
        assert all({"type", "help", "unit"} <= set(e) for e in entries)


def _check_matrix(data: Any) -> None:
    assert data["resultType"] == "matrix"
    assert {tuple(sorted(s["metric"].items())) for s in data["result"]} == {
        (("job", "api"),),
        (("job", "web"),),
    }
    for s in data["result"]:
        assert s["values"], s
        for t, v in s["values"]:
            assert isinstance(t, int | float) and isinstance(v, str)
            assert math.isfinite(float(v))


def _check_vector(data: Any) -> None:
    assert data["resultType"] == "vector"
    assert len(data["result"]) == 8
    for s in data["result"]:
        t, v = s["value"]
        assert isinstance(t, int | float) and isinstance(v, str)


def _check_formatted(data: Any) -> None:
    assert data == "sum by (job) (rate(http_requests_total[5m]))"


def _range(t0: int) -> dict[str, str]:
    # promlib QueryRange: strconv.FormatFloat seconds, step in seconds, timeout if set.
    return {
        "query": "sum by (job) (rate(http_requests_total[1m]))",
        "start": str(t0 + 300),
        "end": str(t0 + 2400),
        "step": "15",
        "timeout": "60s",
    }


CASES = [
    pytest.param(
        Call("POST", "/api/v1/query", lambda t0: {"query": "1+1", "time": "4"}),
        _check_health,
        id="health-check-1plus1",
    ),
    pytest.param(
        Call("GET", "/api/v1/status/buildinfo", lambda t0: {}),
        _check_buildinfo,
        id="buildinfo-version-detect",
    ),
    pytest.param(
        # datasource.areExemplarsAvailable: query "test", start/end in *milliseconds*.
        Call(
            "GET",
            "/api/v1/query_exemplars",
            lambda t0: {
                "query": "test",
                "start": str(t0 * 1000 - 1_800_000),
                "end": str(t0 * 1000),
            },
        ),
        _check_empty_list,
        id="exemplars-probe",
    ),
    pytest.param(
        Call(
            "POST",
            "/api/v1/query_exemplars",
            lambda t0: {
                "query": "sum by (job) (rate(http_requests_total[1m]))",
                "start": str(t0 + 300),
                "end": str(t0 + 2400.5),
            },
        ),
        _check_empty_list,
        id="exemplars-panel",
    ),
    pytest.param(Call("GET", "/api/v1/rules", lambda t0: {}), _check_rules, id="rules-load"),
    pytest.param(
        Call("GET", "/api/v1/rules", lambda t0: {"type": "alert"}),
        _check_rules,
        id="rules-alerting-ui",
    ),
    pytest.param(Call("GET", "/api/v1/alerts", lambda t0: {}), _check_alerts, id="alerts"),
    pytest.param(
        # LabelsApiClient.queryLabelKeys (label browser), POST through the resource proxy.
        Call("POST", "/api/v1/labels", lambda t0: {"limit": "40000", **_window(t0)}),
        _check_label_names,
        id="label-browser-keys",
    ),
    pytest.param(
        Call(
            "GET",
            "/api/v1/labels",
            lambda t0: {"match[]": "http_requests_total", **_window(t0)},
        ),
        _check_label_names,
        id="label-keys-with-match-get",
    ),
    pytest.param(
        # LabelsApiClient.queryMetrics: the metric browser's names.
        Call("GET", "/api/v1/label/__name__/values", lambda t0: {"limit": "40000", **_window(t0)}),
        _check_metric_names,
        id="metric-browser-names",
    ),
    pytest.param(
        Call(
            "GET",
            "/api/v1/label/job/values",
            lambda t0: {"match[]": "http_requests_total", "limit": "40000", **_window(t0)},
        ),
        _check_job_values,
        id="label-values-with-match",
    ),
    pytest.param(
        # BaseResourceClient.querySeries
        Call(
            "POST",
            "/api/v1/series",
            lambda t0: {"match[]": "http_requests_total", "limit": "40000", **_window(t0)},
        ),
        _check_series,
        id="series-lookup",
    ),
    pytest.param(
        Call("GET", "/api/v1/metadata", lambda t0: {}), _check_metadata, id="metric-metadata"
    ),
    pytest.param(
        Call("POST", "/api/v1/query_range", _range), _check_matrix, id="dashboard-panel-range"
    ),
    pytest.param(
        Call(
            "POST",
            "/api/v1/query",
            lambda t0: {"query": "http_requests_total", "time": str(t0 + 1800)},
        ),
        _check_vector,
        id="explore-instant",
    ),
    pytest.param(
        Call(
            "POST",
            "/api/v1/format_query",
            lambda t0: {"query": "sum by(job)(rate(http_requests_total[5m]))"},
        ),
        _check_formatted,
        id="format-query",
    ),
]


@pytest.mark.parametrize(("call", "check"), CASES)
def test_grafana_request(
    served: Served, client: httpx.Client, call: Call, check: Callable[[Any], None]
) -> None:
    check(_ok(_send(client, served, call)))


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        pytest.param(
            Call("GET", "/api/v1/query_exemplars", lambda t0: {"query": "up", "start": "soon"}),
            'invalid parameter "start"',
            id="exemplars-bad-start",
        ),
        pytest.param(
            Call(
                "POST",
                "/api/v1/query_exemplars",
                lambda t0: {"query": "up", "start": "10", "end": "5"},
            ),
            "end timestamp must not be before start timestamp",
            id="exemplars-end-before-start",
        ),
        pytest.param(
            Call("GET", "/api/v1/query_exemplars", lambda t0: {"query": "sum("}),
            "parse error",
            id="exemplars-parse-error",
        ),
        pytest.param(
            Call("GET", "/api/v1/query_exemplars", lambda t0: {}),
            "parse error",
            id="exemplars-missing-query",
        ),
        pytest.param(
            Call("GET", "/api/v1/rules", lambda t0: {"type": "banana"}),
            'invalid parameter "type"',
            id="rules-bad-type",
        ),
        pytest.param(
            Call("POST", "/api/v1/format_query", lambda t0: {"query": "rate(x[5m]"}),
            'invalid parameter "query"',
            id="format-query-parse-error",
        ),
        pytest.param(
            # Grafana shows ``error`` of a failed panel query.
            Call(
                "POST",
                "/api/v1/query_range",
                lambda t0: {"query": "sum(", "start": "0", "end": "60", "step": "15"},
            ),
            "parse error",
            id="panel-query-error",
        ),
    ],
)
def test_grafana_error_shape(
    served: Served, client: httpx.Client, call: Call, fragment: str
) -> None:
    response = _send(client, served, call)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["status"] == "error" and body["errorType"] == "bad_data"
    assert fragment in body["error"], body


def test_exemplars_without_selector_is_no_content(served: Served, client: httpx.Client) -> None:
    """Prometheus answers 204 with no body when the query selects no series."""
    response = client.get("/api/v1/query_exemplars", params={"query": "1+1"})
    assert response.status_code == 204 and response.content == b""
